// Validates Kubernetes manifests (a rendered multi-document YAML stream, from
// files or stdin) against the Kubernetes OpenAPI schemas shipped by the npm
// package kubernetes-models (types, required fields, enums and formats of
// every nested object). The schemas allow unknown fields, as the API server's
// non-strict decoding does.
//   kubectl kustomize deploy/kubernetes/overlays/dev | node validate.mjs
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

const inputs = process.argv.length > 2 ? process.argv.slice(2) : ["/dev/stdin"];
let failures = 0;
let checked = 0;

// apiVersion "apps/v1" -> "kubernetes-models/apps/v1"; "v1" -> "kubernetes-models/v1".
async function modelFor(apiVersion, kind) {
  let module;
  try {
    module = await import(`kubernetes-models/${apiVersion}`);
  } catch {
    return undefined;
  }
  return module[kind];
}

for (const input of inputs) {
  const docs = parseAllDocuments(readFileSync(input, "utf8"));
  for (const doc of docs) {
    if (doc.errors.length) {
      console.error(`${input}: YAML: ${doc.errors[0].message}`);
      failures++;
      continue;
    }
    const object = doc.toJS();
    if (!object) continue;
    const name = `${object.kind}/${object.metadata?.name}`;
    const Model = await modelFor(object.apiVersion, object.kind);
    if (!Model) {
      console.error(`${name}: no schema for ${object.apiVersion} ${object.kind}`);
      failures++;
      continue;
    }
    checked++;
    try {
      new Model(object).validate();
    } catch (error) {
      console.error(`${name}: ${error.message}`);
      failures++;
      continue;
    }
  }
}

console.log(`${checked} objects validated, ${failures} failed`);
process.exit(failures ? 1 : 0);
