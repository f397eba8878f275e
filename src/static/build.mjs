// Bundle the editor: js/main.js (which imports css/app.css) into dist/app.js and dist/app.css, and the
// modules it imports dynamically (code-editor.js, with CodeMirror) into chunks of their own beside it,
// fetched on first use. `node build.mjs --watch` rebuilds on change.
// dist/index.html is index.html with the chunks app.js imports at once named for preloading, so that the
// browser fetches them beside app.js rather than after it (the server prefers it to index.html).
import { readFileSync, rmSync, writeFileSync } from "node:fs";
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
  metafile: true,
};

/** Write dist/index.html: index.html with a modulepreload link for each chunk app.js imports statically. */
function writeIndex(metafile) {
  const app = Object.entries(metafile.outputs).find(([, output]) => output.entryPoint === "js/main.js");
  const chunks = (app?.[1].imports || []).filter((i) => i.kind === "import-statement").map((i) => i.path);
  const links = chunks.map((path) => `<link rel="modulepreload" href="/static/${path}">`).join("\n  ");
  const html = readFileSync("index.html", "utf8").replace("<!-- modulepreload -->", links);
  writeFileSync("dist/index.html", html);
}

rmSync("dist", { recursive: true, force: true }); // no chunks left over from earlier builds

if (process.argv.includes("--watch")) {
  const context = await esbuild.context({
    ...options,
    plugins: [{ name: "index", setup: (build) => build.onEnd((result) => result.metafile && writeIndex(result.metafile)) }],
  });
  await context.watch();
  console.log("watching for changes…");
} else {
  const result = await esbuild.build(options);
  writeIndex(result.metafile);
}
