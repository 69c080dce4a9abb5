// The stream view's synthetic addresses (wireshark/unixsock.lua), as Wireshark
// prints them: the prefix of bpf/unixsock.h, then a side's cgroup id (0: not
// known), in RFC 5952's short form (the longest run of zero groups as ::).
import { VIEW_PREFIX_HI, VIEW_PREFIX_LO } from '../../src/generated/vocab';

export function viewAddress(cgroupId: bigint): string {
  const words = [VIEW_PREFIX_HI >>> 16, VIEW_PREFIX_HI & 0xffff, VIEW_PREFIX_LO >>> 16, VIEW_PREFIX_LO & 0xffff];
  for (let i = 3; i >= 0; i--) words.push(Number((cgroupId >> BigInt(16 * i)) & 0xffffn));
  // the longest run of two or more zero groups (the first of equal ones) becomes ::
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = words.map((w) => w.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** A regular expression matching the address literally. */
export const viewAddressRe = (cgroupId: bigint) => viewAddress(cgroupId).replace(/\./g, '\\.');

/** The address's 16 bytes as hex digits (how test/helpers/pcapng-read.ts keys name resolution records). */
export const viewAddressHex = (cgroupId: bigint) =>
  VIEW_PREFIX_HI.toString(16).padStart(8, '0') + VIEW_PREFIX_LO.toString(16).padStart(8, '0') + cgroupId.toString(16).padStart(16, '0');
