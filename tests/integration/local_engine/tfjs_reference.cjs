// Runs a TensorFlow.js graph model with the pure-JS CPU backend on one input and writes the outputs.
// Usage: node tfjs_reference.cjs <model.json> <input.bin> <input.json: {shape, dtype}> <out_dir>
// NODE_PATH must point at a node_modules folder holding @tensorflow/tfjs.
const fs = require("fs");
const path = require("path");
const tf = require("@tensorflow/tfjs");

async function main() {
  const [modelJsonPath, inputBin, inputMeta, outDir] = process.argv.slice(2);
  await tf.setBackend("cpu");
  const modelJson = JSON.parse(fs.readFileSync(modelJsonPath, "utf8"));
  const dir = path.dirname(modelJsonPath);
  const specs = [];
  const buffers = [];
  for (const group of modelJson.weightsManifest) {
    specs.push(...group.weights);
    for (const p of group.paths) buffers.push(fs.readFileSync(path.join(dir, p)));
  }
  const weightData = new Uint8Array(Buffer.concat(buffers)).buffer;
  const model = await tf.loadGraphModel(
    tf.io.fromMemory({ modelTopology: modelJson.modelTopology, weightSpecs: specs, weightData })
  );
  const meta = JSON.parse(fs.readFileSync(inputMeta, "utf8"));
  const raw = fs.readFileSync(inputBin);
  const ab = raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength);
  const data = meta.dtype === "int32" ? new Int32Array(ab) : new Float32Array(ab);
  const input = tf.tensor(data, meta.shape, meta.dtype);
  const names = model.outputs.map((o) => o.name);
  let outs = await model.executeAsync(input);
  if (!Array.isArray(outs)) outs = [outs];
  const index = [];
  for (let i = 0; i < outs.length; i++) {
    const name = names[i].replace(/:0$/, "");
    const file = `out_${i}.bin`;
    fs.writeFileSync(path.join(outDir, file), Buffer.from((await outs[i].data()).buffer));
    index.push({ name, file, shape: outs[i].shape, dtype: outs[i].dtype });
  }
  fs.writeFileSync(path.join(outDir, "outputs.json"), JSON.stringify(index));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
