// The attacker's shared object for swap-attack.c: if its constructor ever runs
// inside the capture, it writes MARKER (a -D at build time) with the
// capabilities it found in effect. The privilege test asserts it never does.
#include <stdio.h>
#include <string.h>

__attribute__((constructor)) static void evil(void)
{
	FILE *st = fopen("/proc/self/status", "r"), *m = fopen(MARKER, "w");
	char line[256];

	if (!m)
		return;
	fprintf(m, "the attacker's code ran in the capture\n");
	while (st && fgets(line, sizeof line, st))
		if (!strncmp(line, "Cap", 3) || !strncmp(line, "Uid:", 4))
			fputs(line, m);
	if (st)
		fclose(st);
	fclose(m);
}
