// Bundles the pages into dist/ (embedded into the Berth binary) or the tests into .test-build/.
//
//   node tools/build.mjs                 -> dist/terminal.js grid.js replay.js terminal.css
//   node tools/build.mjs --outdir DIR    -> the same files into DIR (to compare with dist/)
//   node tools/build.mjs --tests         -> .test-build/*.test.mjs for `node --test`
//
// The output depends only on the sources and the locked dependencies: no timestamps, no
// absolute paths, no source maps, so a rebuild gives identical bytes.
import { build } from "esbuild";
import { readdirSync, rmSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
process.chdir(root);

const args = process.argv.slice(2);
const tests = args.includes("--tests");
const outdirArg = args.indexOf("--outdir");
const outdir = outdirArg >= 0 ? args[outdirArg + 1] : tests ? ".test-build" : "dist";
if (!outdir) {
  console.error("build.mjs: --outdir needs a directory");
  process.exit(2);
}

const common = {
  bundle: true,
  logLevel: "warning",
  charset: "ascii",
  legalComments: "eof",
  sourcemap: false,
  absWorkingDir: root,
};

if (tests) {
  rmSync(outdir, { recursive: true, force: true });
  const entryPoints = readdirSync("test")
    .filter((f) => f.endsWith(".test.ts"))
    .map((f) => join("test", f));
  await build({
    ...common,
    entryPoints,
    outdir,
    outExtension: { ".js": ".mjs" },
    platform: "node",
    format: "esm",
    target: "node18",
  });
} else {
  const browser = { ...common, outdir, platform: "browser", target: "es2020", minify: true, metafile: true };
  // Two builds, because terminal.js and terminal.css share a name.
  const scripts = await build({
    ...browser,
    entryPoints: {
      terminal: "src/entries/terminal.ts",
      grid: "src/entries/grid.ts",
      replay: "src/entries/replay.ts",
    },
    format: "iife",
  });
  const styles = await build({ ...browser, entryPoints: { terminal: "src/styles/terminal.css" } });
  const outputs = [...Object.keys(scripts.metafile.outputs), ...Object.keys(styles.metafile.outputs)];
  for (const file of outputs.sort()) {
    const size = statSync(file).size;
    console.log(`${relative(root, file).padEnd(28)} ${(size / 1024).toFixed(1).padStart(8)} KiB`);
  }
}
