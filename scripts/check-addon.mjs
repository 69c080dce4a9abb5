// Loads the freshly linked addon with every symbol resolved at once
// (RTLD_NOW), so that a symbol missing from the static libraries fails the
// build here, not at the user's first capture as "symbol lookup error" (Node
// loads addons lazily, and a shared object links with undefined symbols).
// -z defs cannot do it: the addon's napi_* symbols come from the node
// executable that loads it. Usage: check-addon.mjs ADDON.node NODE_ARCH
import { constants } from 'node:os';
import { resolve } from 'node:path';

const [file, arch] = process.argv.slice(2);
if (!file) {
  console.error('usage: check-addon.mjs ADDON.node [NODE_ARCH]');
  process.exit(2);
}
if (arch && arch !== process.arch) {
  console.error(`check-addon: ${file} is for ${arch}, this node is ${process.arch}: not loaded here`);
  process.exit(0);
}
try {
  process.dlopen({ exports: {} }, resolve(file), constants.dlopen.RTLD_NOW);
} catch (e) {
  console.error(`check-addon: ${file} does not load: ${e.message.split('\n')[0]}`);
  process.exit(1);
}
