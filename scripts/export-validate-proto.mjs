// Writes proto/buf/validate/validate.proto from the descriptor embedded in
// @bufbuild/protovalidate. The buf registry is unreachable and the npm package
// ships no .proto source, so we print one from the descriptor and then check
// (with `--check`) that buf compiles it back to the identical descriptor.
//
//   node scripts/export-validate-proto.mjs          # write the file
//   node scripts/export-validate-proto.mjs --check  # compare with `buf build`
import { writeFileSync, readFileSync, mkdtempSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { clone, fromBinary, getExtension, equals, isFieldSet, toJson, ScalarType } from "@bufbuild/protobuf";
import { FieldDescriptorProtoSchema, FileDescriptorSetSchema, FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";

// proto2 descriptor fields read as their defaults when unset; presence needs isFieldSet.
const has = (f, name) => isFieldSet(f, FieldDescriptorProtoSchema.field[name]);
import { file_buf_validate_validate as file } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";

const target = "proto/buf/validate/validate.proto";
const version = JSON.parse(readFileSync("node_modules/@bufbuild/protovalidate/package.json", "utf8")).version;

const scalarNames = {
  1: "double", 2: "float", 3: "int64", 4: "uint64", 5: "int32", 6: "fixed64", 7: "fixed32",
  8: "bool", 9: "string", 12: "bytes", 13: "uint32", 15: "sfixed32", 16: "sfixed64",
  17: "sint32", 18: "sint64",
};
const MAX_FIELD_NUMBER = 536870911;

function quote(s) {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0);
    if (ch === '"' || ch === "\\") out += "\\" + ch;
    else if (ch === "\n") out += "\\n";
    else if (c < 0x20 || c === 0x7f) out += "\\" + c.toString(8).padStart(3, "0");
    else out += ch;
  }
  return out + '"';
}

// Protobuf text format of a message value, used for aggregate option values.
function textFormat(desc, msg) {
  const parts = [];
  for (const field of desc.fields) {
    if (!isSet(msg, field)) continue;
    const values = field.fieldKind === "list" ? msg[field.localName] : [msg[field.localName]];
    for (const v of values) {
      if (field.message) parts.push(`${field.name} { ${textFormat(field.message, v)} }`);
      else if (field.enum) parts.push(`${field.name}: ${field.enum.values.find((e) => e.number === v).name}`);
      else if (field.scalar === ScalarType.STRING) parts.push(`${field.name}: ${quote(v)}`);
      else parts.push(`${field.name}: ${String(v)}`);
    }
  }
  return parts.join(" ");
}

function isSet(msg, field) {
  const v = msg[field.localName];
  if (field.fieldKind === "list") return v.length > 0;
  return v !== undefined && v !== null && v !== "" && v !== false && v !== 0;
}

// Options we know how to print: extensions of this file (from unknown fields)
// and the plain descriptor options listed per kind. Anything else fails loudly.
function optionList(options, plain, extendee) {
  if (!options) return [];
  const out = [];
  for (const [key, name] of Object.entries(plain)) {
    const v = options[key];
    if (v === undefined || v === false || (Array.isArray(v) && v.length === 0)) continue;
    out.push(`${name} = ${typeof v === "string" ? quote(v) : String(v)}`);
  }
  for (const u of options.$unknown ?? []) {
    const ext = file.extensions.find((e) => e.number === u.no && e.extendee.typeName === extendee);
    if (!ext) throw new Error(`unhandled option ${u.no} on ${extendee}`);
  }
  for (const ext of file.extensions.filter((e) => e.extendee.typeName === extendee)) {
    if (!(options.$unknown ?? []).some((u) => u.no === ext.number)) continue;
    const value = getExtension(options, ext);
    out.push(`(${ext.typeName}) = { ${textFormat(ext.message, value)} }`);
  }
  const ignored = new Set(["$typeName", "$unknown", "uninterpretedOption", "targets", "editionDefaults", ...Object.keys(plain)]);
  for (const [k, v] of Object.entries(options)) {
    if (ignored.has(k) || v === undefined || (Array.isArray(v) && v.length === 0)) continue;
    throw new Error(`unhandled option ${k} on ${extendee}`);
  }
  return out;
}

function protoCamelCase(name) {
  return name.replace(/_([a-z])/g, (_, c) => c.toUpperCase());
}

function fieldType(f, mapEntries) {
  if (f.typeName) {
    const entry = mapEntries.get(f.typeName);
    if (entry) return `map<${fieldType(entry.field[0], mapEntries)}, ${fieldType(entry.field[1], mapEntries)}>`;
    return f.typeName;
  }
  const name = scalarNames[f.type];
  if (!name) throw new Error(`unhandled field type ${f.type}`);
  return name;
}

function printField(f, indent, mapEntries, inOneof) {
  const type = fieldType(f, mapEntries);
  const label = inOneof || type.startsWith("map<") ? "" : ({ 1: "optional ", 2: "required ", 3: "repeated " })[f.label];
  const opts = optionList(f.options, { deprecated: "deprecated", packed: "packed" }, "google.protobuf.FieldOptions");
  if (has(f, "defaultValue")) opts.unshift(`default = ${f.type === 9 ? quote(f.defaultValue) : f.defaultValue}`);
  if (has(f, "jsonName") && f.jsonName !== protoCamelCase(f.name)) opts.unshift(`json_name = ${quote(f.jsonName)}`);
  return `${indent}${label}${type} ${f.name} = ${f.number}${opts.length ? ` [${opts.join(", ")}]` : ""};`;
}

function printEnum(e, indent) {
  const lines = [`${indent}enum ${e.name} {`];
  for (const o of optionList(e.options, { allowAlias: "allow_alias" }, "google.protobuf.EnumOptions")) lines.push(`${indent}  option ${o};`);
  for (const v of e.value) {
    const opts = optionList(v.options, { deprecated: "deprecated" }, "google.protobuf.EnumValueOptions");
    lines.push(`${indent}  ${v.name} = ${v.number}${opts.length ? ` [${opts.join(", ")}]` : ""};`);
  }
  // Enum reserved ranges are inclusive, unlike message ones.
  if (e.reservedRange.length) lines.push(`${indent}  reserved ${e.reservedRange.map((r) => printRange(r.start, r.end + 1)).join(", ")};`);
  if (e.reservedName.length) lines.push(`${indent}  reserved ${e.reservedName.map(quote).join(", ")};`);
  lines.push(`${indent}}`);
  return lines;
}

function printRange(start, endExclusive) {
  const end = endExclusive - 1;
  if (end === MAX_FIELD_NUMBER) return `${start} to max`;
  return start === end ? `${start}` : `${start} to ${end}`;
}

function printMessage(m, indent, scope) {
  const fqn = `${scope}.${m.name}`;
  const mapEntries = new Map(
    m.nestedType.filter((n) => n.options?.mapEntry).map((n) => [`${fqn}.${n.name}`, n]),
  );
  const lines = [`${indent}message ${m.name} {`];
  const inner = indent + "  ";
  for (const o of optionList(m.options, { deprecated: "deprecated" }, "google.protobuf.MessageOptions")) lines.push(`${inner}option ${o};`);
  const printedOneofs = new Set();
  for (const f of m.field) {
    if (!has(f, "oneofIndex") || f.proto3Optional) {
      lines.push(printField(f, inner, mapEntries, false));
      continue;
    }
    if (printedOneofs.has(f.oneofIndex)) continue;
    printedOneofs.add(f.oneofIndex);
    const decl = m.oneofDecl[f.oneofIndex];
    lines.push(`${inner}oneof ${decl.name} {`);
    for (const o of optionList(decl.options, {}, "google.protobuf.OneofOptions")) lines.push(`${inner}  option ${o};`);
    for (const of of m.field.filter((x) => has(x, "oneofIndex") && x.oneofIndex === f.oneofIndex)) lines.push(printField(of, inner + "  ", mapEntries, true));
    lines.push(`${inner}}`);
  }
  for (const n of m.nestedType) if (!n.options?.mapEntry) lines.push(...printMessage(n, inner, fqn));
  for (const e of m.enumType) lines.push(...printEnum(e, inner));
  for (const r of m.extensionRange) {
    if (r.options) optionList(r.options, {}, "google.protobuf.ExtensionRangeOptions");
    lines.push(`${inner}extensions ${printRange(r.start, r.end)};`);
  }
  if (m.reservedRange.length) lines.push(`${inner}reserved ${m.reservedRange.map((r) => printRange(r.start, r.end)).join(", ")};`);
  if (m.reservedName.length) lines.push(`${inner}reserved ${m.reservedName.map(quote).join(", ")};`);
  lines.push(`${indent}}`);
  return lines;
}

function printFile(p) {
  const lines = [
    `// Reconstructed from the descriptor embedded in @bufbuild/protovalidate@${version}`,
    "// by scripts/export-validate-proto.mjs; do not edit. Upstream: bufbuild/protovalidate,",
    "// Copyright Buf Technologies, Inc., Apache License 2.0. Comments are not in the descriptor.",
    "",
    `syntax = "${p.syntax || "proto2"}";`,
    "",
    `package ${p.package};`,
    "",
    ...p.dependency.map((d) => `import ${quote(d)};`),
    "",
  ];
  const fileOpts = {
    javaPackage: "java_package", javaOuterClassname: "java_outer_classname",
    javaMultipleFiles: "java_multiple_files", goPackage: "go_package",
  };
  for (const o of optionList(p.options, fileOpts, "google.protobuf.FileOptions")) lines.push(`option ${o};`);
  for (const extendee of new Set(p.extension.map((x) => x.extendee))) {
    const exts = p.extension.filter((x) => x.extendee === extendee);
    lines.push("", `extend ${extendee} {`);
    for (const x of exts) lines.push(printField(x, "  ", new Map(), false));
    lines.push("}");
  }
  for (const m of p.messageType) lines.push("", ...printMessage(m, "", `.${p.package}`));
  for (const e of p.enumType) lines.push("", ...printEnum(e, ""));
  return lines.join("\n") + "\n";
}

function check() {
  const dir = mkdtempSync(join(tmpdir(), "validate-proto-"));
  const image = join(dir, "image.binpb");
  execFileSync("node_modules/.bin/buf", ["build", "proto", "--path", "proto/buf/validate", "--exclude-source-info", "-o", image]);
  const set = fromBinary(FileDescriptorSetSchema, readFileSync(image));
  const built = set.file.find((f) => f.name === "buf/validate/validate.proto");
  const embedded = clone(FileDescriptorProtoSchema, file.proto);
  // buf fills json_name on every field; the embedded copy may too. Compare both normalised.
  const norm = (fd) => toJson(FileDescriptorProtoSchema, fd, { registry: undefined });
  const a = JSON.stringify(norm(built)), b = JSON.stringify(norm(embedded));
  if (!equals(FileDescriptorProtoSchema, built, embedded) && a !== b) {
    writeFileSync(join(dir, "built.json"), JSON.stringify(norm(built), null, 1));
    writeFileSync(join(dir, "embedded.json"), JSON.stringify(norm(embedded), null, 1));
    console.error(`descriptors differ; compare ${dir}/built.json and ${dir}/embedded.json`);
    process.exit(1);
  }
  console.log(`${target} compiles to the descriptor embedded in @bufbuild/protovalidate@${version}`);
}

if (process.argv.includes("--check")) check();
else {
  writeFileSync(target, printFile(file.proto));
  console.log(`wrote ${target}`);
}
