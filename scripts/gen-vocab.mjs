// The record layouts and their vocabulary, written once in bpf/unixsock.h,
// handed to the other languages:
//   src/generated/vocab.ts          TypeScript (committed; the build checks it)
//   wireshark/unixsock.lua          the block between the "generated
//                                   vocabulary" marker comments (the file stays
//                                   one readable, installable file)
//   build/unixsock_vocab.h          C++ (--c FILE): enum names, static_asserts
//                                   that every offset computed here is the
//                                   compiler's, and the offsetof table the
//                                   addon exports (layout())
//
//   node scripts/gen-vocab.mjs                 rewrites the committed files
//   node scripts/gen-vocab.mjs --check         exits 1 naming those that differ
//   node scripts/gen-vocab.mjs --check --c F   the same, and writes F (make)
//   --root DIR                                 another checkout (the tests)
//
// It reads only what the header's opening comment promises: `#define
// UNIXSOCK_X <integer expression>`, enums, and structs of fixed-width fields.
// Anything else in an enum or struct is an error, not a silent omission.
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

const args = process.argv.slice(2);
const rootAt = args.indexOf('--root');
const root = rootAt >= 0 ? args[rootAt + 1] : new URL('..', import.meta.url).pathname;
const HEADER = join(root, 'bpf/unixsock.h');
const TS_OUT = join(root, 'src/generated/vocab.ts');
const LUA_FILE = join(root, 'wireshark/unixsock.lua');
const LUA_BEGIN = '-- BEGIN generated vocabulary';
const LUA_END = '-- END generated vocabulary';

// What the dissector reads: the record header, its flags and options, names.
const LUA_DEFINES = ['LINK_VERSION', 'VIEW_PREFIX_HI', 'VIEW_PREFIX_LO'];
const LUA_ENUMS = ['MSG_FLAGS', 'LINK_FLAGS', 'LINK_TLV'];
const LUA_NAMES = ['SOCK_TYPE', 'STRATEGY'];
const LUA_STRUCTS = ['LINK_HEADER'];
// Structs JavaScript fills and hands to the addon, field by field under camelCase names.
const TS_OBJECTS = ['FILTER'];

const TYPES = { __u8: 1, __u16: 2, __u32: 4, __u64: 8, __s8: 1, __s16: 2, __s32: 4, __s64: 8, char: 1 };

function fail(msg) {
  console.error(`gen-vocab: ${msg}`);
  process.exit(2);
}

/** An integer expression of numbers, known names and + - * << >> | ( ). */
function evaluate(expr, known, where) {
  const text = expr.replace(/\b([A-Z_][A-Z0-9_]*)\b/g, (name) => {
    if (!(name in known)) fail(`${where}: unknown name ${name} in "${expr}"`);
    return `(${known[name]})`;
  });
  const plain = text.replace(/\b(0x[0-9a-fA-F]+|\d+)[uUlL]*\b/g, '$1');
  if (!/^[\s\d()+\-*|x<>a-fA-F]*$/.test(plain) || /[a-fA-F]/.test(plain.replace(/0x[0-9a-fA-F]+/g, ''))) fail(`${where}: not an integer expression: "${expr}"`);
  const v = Function(`"use strict"; return (${plain});`)();
  if (!Number.isSafeInteger(v)) fail(`${where}: "${expr}" is not an integer`);
  return v;
}

const camel = (name) => name.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());

function parse(src) {
  const text = src.replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, ' ')).replace(/\/\/.*$/gm, '');
  const known = {};
  const defines = [];
  const enums = [];
  const structs = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const where = `bpf/unixsock.h:${i + 1}`;
    let m;
    if ((m = /^#define\s+UNIXSOCK_([A-Z0-9_]+)\s+(\S.*?)\s*$/.exec(line))) {
      const value = evaluate(m[2], known, where);
      known[`UNIXSOCK_${m[1]}`] = value;
      defines.push({ name: m[1], value });
    } else if ((m = /^enum\s+unixsock_([a-z0-9_]+)\s*\{/.exec(line))) {
      const members = [];
      let next = 0;
      for (i++; !/^\s*\};/.test(lines[i]); i++) {
        if (i >= lines.length) fail(`${where}: enum ${m[1]} does not end`);
        const body = lines[i].trim();
        if (!body) continue;
        const e = /^(UNIXSOCK_[A-Z0-9_]+)\s*(?:=\s*([^,]+?))?\s*,$/.exec(body);
        if (!e) fail(`bpf/unixsock.h:${i + 1}: not an enum member: "${body}"`);
        const value = e[2] === undefined ? next : evaluate(e[2], known, `bpf/unixsock.h:${i + 1}`);
        known[e[1]] = value;
        next = value + 1;
        members.push({ full: e[1], value });
      }
      // the members' common prefix, up to an underscore, is the enum's
      let prefix = members[0].full;
      for (const x of members) while (!x.full.startsWith(prefix)) prefix = prefix.slice(0, -1);
      prefix = prefix.slice(0, prefix.lastIndexOf('_') + 1);
      for (const x of members) x.name = x.full.slice(prefix.length);
      enums.push({ c: m[1], name: m[1].toUpperCase(), members });
    } else if ((m = /^struct\s+unixsock_([a-z0-9_]+)\s*\{/.exec(line))) {
      const fields = [];
      let off = 0;
      let align = 1;
      for (i++; !/^\s*\};/.test(lines[i]); i++) {
        if (i >= lines.length) fail(`${where}: struct ${m[1]} does not end`);
        const body = lines[i].trim();
        if (!body) continue;
        const f = /^(\w+)\s+(\w+)\s*(?:\[([^\]]*)\])?\s*;$/.exec(body);
        if (!f || !(f[1] in TYPES)) fail(`bpf/unixsock.h:${i + 1}: not a fixed-width field: "${body}"`);
        const unit = TYPES[f[1]];
        const flexible = f[3] !== undefined && f[3].trim() === '';
        const count = f[3] === undefined ? 1 : flexible ? 0 : evaluate(f[3], known, `bpf/unixsock.h:${i + 1}`);
        off = Math.ceil(off / unit) * unit;
        align = Math.max(align, unit);
        const kind = f[3] === undefined ? 'int' : f[1] === 'char' ? 'string' : 'bytes';
        fields.push({ name: f[2], js: camel(f[2]), off, size: unit * count, flexible, kind });
        off += unit * count;
      }
      const size = Math.ceil(off / align) * align;
      structs.push({ c: m[1], name: m[1].toUpperCase(), fields, size });
    }
  }
  return { defines, enums, structs };
}

const HEAD = 'Generated by scripts/gen-vocab.mjs from bpf/unixsock.h: edit the header, then `npm run vocab`.';
const names = (e) => e.members.map((x) => ({ value: x.value, name: x.name.toLowerCase() }));

function typescript({ defines, enums, structs }) {
  const out = [`// ${HEAD}`, ''];
  for (const d of defines) out.push(`export const ${d.name} = ${d.value};`);
  for (const e of enums) {
    out.push('', `/** enum unixsock_${e.c} */`, `export const ${e.name} = {`);
    for (const x of e.members) out.push(`  ${x.name}: ${x.value},`);
    out.push('} as const;');
    out.push(`/** enum unixsock_${e.c}: each member's name, lowercased, by number */`);
    out.push(`export const ${e.name}_NAMES: Readonly<Record<number, string>> = {`);
    for (const x of names(e)) out.push(`  ${x.value}: '${x.name}',`);
    out.push('};');
  }
  for (const s of structs) {
    out.push('', `/** struct unixsock_${s.c}: its size, and each field's byte offset and size */`, `export const ${s.name} = {`);
    out.push(`  size: ${s.size},`, '  off: {');
    for (const f of s.fields) out.push(`    ${f.name}: ${f.off},`);
    out.push('  },', '  len: {');
    for (const f of s.fields) out.push(`    ${f.name}: ${f.size},`);
    out.push('  },', '} as const;');
  }
  for (const s of structs.filter((x) => TS_OBJECTS.includes(x.name))) {
    const type = `Unixsock${s.name[0]}${s.name.slice(1).toLowerCase()}`;
    const tsType = { int: 'number', bytes: 'Buffer', string: 'string' };
    const zero = { int: '0', bytes: 'Buffer.alloc(0)', string: "''" };
    out.push('', `/** struct unixsock_${s.c} as JavaScript hands it to the addon: each field under its camelCase name */`);
    out.push(`export interface ${type} {`);
    for (const f of s.fields) out.push(`  ${f.js}: ${tsType[f.kind]};`);
    out.push('}', `/** A struct unixsock_${s.c} of zeros (empty strings). */`, `export function empty${type}(): ${type} {`, '  return {');
    for (const f of s.fields) out.push(`    ${f.js}: ${zero[f.kind]},`);
    out.push('  };', '}');
  }
  return out.join('\n') + '\n';
}

function luaTable(entries, indent) {
  return `{\n${entries.map((e) => `${indent}  ${e},`).join('\n')}\n${indent}}`;
}

function lua({ defines, enums, structs }) {
  const pick = (list, names, kind) => names.map((n) => list.find((x) => x.name === n) ?? fail(`the dissector needs ${kind} ${n}, which bpf/unixsock.h lacks`));
  const out = [LUA_BEGIN, `-- ${HEAD}`];
  for (const d of pick(defines, LUA_DEFINES, 'UNIXSOCK_')) out.push(`local ${d.name} = ${d.value}`);
  for (const e of pick(enums, LUA_ENUMS, 'enum')) {
    const hex = e.name.endsWith('FLAGS');
    out.push(
      `local ${e.name} = ${luaTable(
        e.members.map((x) => `${x.name} = ${hex ? '0x' + x.value.toString(16).padStart(4, '0') : x.value}`),
        '',
      )}`,
    );
  }
  for (const e of pick(enums, LUA_NAMES, 'enum')) {
    out.push(
      `local ${e.name}_NAMES = ${luaTable(
        names(e).map((x) => `[${x.value}] = "${x.name}"`),
        '',
      )}`,
    );
  }
  for (const s of pick(structs, LUA_STRUCTS, 'struct')) {
    out.push(`-- struct unixsock_${s.c}: byte offset and size of each field`);
    out.push(`local ${s.name} = {`);
    out.push(`  size = ${s.size},`);
    out.push(
      `  off = ${luaTable(
        s.fields.map((f) => `${f.name} = ${f.off}`),
        '  ',
      )},`,
    );
    out.push(
      `  len = ${luaTable(
        s.fields.map((f) => `${f.name} = ${f.size}`),
        '  ',
      )},`,
    );
    out.push('}');
  }
  out.push(LUA_END);
  return out.join('\n');
}

function withLuaBlock(file, block) {
  const b = file.indexOf(LUA_BEGIN);
  const e = file.indexOf(LUA_END);
  if (b < 0 || e < b) fail(`wireshark/unixsock.lua has no "${LUA_BEGIN}" ... "${LUA_END}" block`);
  return file.slice(0, b) + block + file.slice(e + LUA_END.length);
}

function cHeader({ enums, structs }) {
  const out = [`// ${HEAD}`, '#ifndef UNIXSOCK_VOCAB_H', '#define UNIXSOCK_VOCAB_H', '#include <stddef.h>', '#include "unixsock.h"', ''];
  for (const e of enums) {
    out.push(`// enum unixsock_${e.c}: a member's name, lowercased (nullptr for another number)`);
    out.push(`static inline const char* unixsock_${e.c}_name(unsigned v) {`, '  switch (v) {');
    for (const x of e.members) out.push(`    case ${x.full}: return "${x.name.toLowerCase()}";`);
    out.push('  }', '  return nullptr;', '}', '');
  }
  out.push("// the offsets and sizes scripts/gen-vocab.mjs computed (and src/generated/vocab.ts holds) are the compiler's");
  for (const s of structs) {
    out.push(`static_assert(sizeof(struct unixsock_${s.c}) == ${s.size}, "struct unixsock_${s.c}: size");`);
    for (const f of s.fields) {
      out.push(`static_assert(offsetof(struct unixsock_${s.c}, ${f.name}) == ${f.off}, "unixsock_${s.c}.${f.name}: offset");`);
      if (!f.flexible) out.push(`static_assert(sizeof(((struct unixsock_${s.c}*)nullptr)->${f.name}) == ${f.size}, "unixsock_${s.c}.${f.name}: size");`);
    }
  }
  out.push('', '// every field as the compiler lays it out (the addon exports it: layout())');
  out.push('struct unixsock_vocab_field {', '  const char* type;  // the struct, as src/generated/vocab.ts names it', '  const char* name;');
  out.push(
    '  const char* js;    // its camelCase name',
    "  char kind;         // 'i' integer, 'b' bytes, 's' NUL-terminated string",
    '  size_t off, size;',
    '};',
  );
  out.push('static const struct unixsock_vocab_field unixsock_vocab_fields[] = {');
  for (const s of structs)
    for (const f of s.fields)
      out.push(
        `    {"${s.name}", "${f.name}", "${f.js}", '${f.kind[0] === 'i' ? 'i' : f.kind === 'bytes' ? 'b' : 's'}', offsetof(struct unixsock_${s.c}, ${f.name}), ${f.flexible ? '0' : `sizeof(((struct unixsock_${s.c}*)nullptr)->${f.name})`}},`,
      );
  out.push('};', 'struct unixsock_vocab_struct {', '  const char* type;', '  size_t size;', '};');
  out.push('static const struct unixsock_vocab_struct unixsock_vocab_structs[] = {');
  for (const s of structs) out.push(`    {"${s.name}", sizeof(struct unixsock_${s.c})},`);
  out.push('};', '', '#endif');
  return out.join('\n') + '\n';
}

const check = args.includes('--check');
const cAt = args.indexOf('--c');
const vocab = parse(readFileSync(HEADER, 'utf8'));
const wanted = [
  [TS_OUT, typescript(vocab)],
  [LUA_FILE, withLuaBlock(readFileSync(LUA_FILE, 'utf8'), lua(vocab))],
];
const stale = [];
for (const [file, text] of wanted) {
  let now = null;
  try {
    now = readFileSync(file, 'utf8');
  } catch {
    // not written yet
  }
  if (now === text) continue;
  if (check) stale.push(relative(root, file));
  else {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, text);
    console.log(`gen-vocab: wrote ${relative(root, file)}`);
  }
}
if (cAt >= 0) {
  const file = args[cAt + 1] ?? fail('--c needs a file');
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, cHeader(vocab));
}
if (stale.length) {
  console.error(`gen-vocab: ${stale.join(' and ')} differ from what bpf/unixsock.h says: run \`npm run vocab\` and commit the result`);
  process.exit(1);
}
