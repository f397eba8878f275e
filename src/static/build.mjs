// Bundle the editor: js/main.js (which imports css/app.css) into dist/app.js and dist/app.css, and the
// modules it imports dynamically (code-editor.js, with CodeMirror) into chunks of their own beside it,
// fetched on first use. `node build.mjs --watch` rebuilds on change.
import { rmSync } from "node:fs";
import * as esbuild from "esbuild";

const options = {
  entryPoints: { app: "js/main.js" },
  bundle: true,
  format: "esm",
  splitting: true,
  target: ["es2022"],
  minify: !process.env.PYFLOW_UI_DEBUG,
  sourcemap: true,
  outdir: "dist",
  entryNames: "[name]",
  chunkNames: "[name]-[hash]",
  logLevel: "warning",
  legalComments: "linked",
};

rmSync("dist", { recursive: true, force: true }); // no chunks left over from earlier builds

if (process.argv.includes("--watch")) {
  const context = await esbuild.context(options);
  await context.watch();
  console.log("watching for changes…");
} else {
  await esbuild.build(options);
}
