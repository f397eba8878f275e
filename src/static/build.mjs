// Bundle the editor: js/main.js (which imports css/app.css) into dist/app.js and dist/app.css. `node build.mjs --watch` rebuilds on change.
import * as esbuild from "esbuild";

const options = {
  entryPoints: { app: "js/main.js" },
  bundle: true,
  format: "esm",
  target: ["es2022"],
  minify: !process.env.PYFLOW_UI_DEBUG,
  sourcemap: true,
  outdir: "dist",
  entryNames: "[name]",
  logLevel: "warning",
  legalComments: "linked",
};

if (process.argv.includes("--watch")) {
  const context = await esbuild.context(options);
  await context.watch();
  console.log("watching for changes…");
} else {
  await esbuild.build(options);
}
