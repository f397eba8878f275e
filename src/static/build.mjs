// Bundle the editor: js/main.js (which imports css/app.css) into dist/app.js and dist/app.css, and the
// modules it imports dynamically (code-editor.js, with CodeMirror) into chunks of their own beside it,
// fetched on first use. `node build.mjs --watch` rebuilds on change.
// dist/index.html is index.html with the chunks app.js imports at once named for preloading, so that the
// browser fetches them beside app.js rather than after it (the server prefers it to index.html).
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import * as esbuild from "esbuild";

// jsPlumb is shipped compiled by Babel, whose class fields become calls to a helper,
// `_defineProperty(this, "name", value)` (a keyed `in` check and a store, the same function for every
// field of every class): thousands of endpoints and links make it the costliest part of drawing a large
// flow. Where no accessor of that name exists (which the helper's Object.defineProperty would shadow
// and an assignment would call instead), such a call is the same as `this.name = value`, which V8 makes
// a plain store. Statements spanning lines keep the helper.
const FIELD_CALL = /^(\s*)_defineProperty\((_assertThisInitialized\(_this\)|this), "([A-Za-z_$][\w$]*)", (.*)\);$/gm;

/** The source with each field-defining call in a line of its own made an assignment; how many. */
function plainFields(source) {
  const accessors = new Set([...source.matchAll(/key: "([\w$]+)",\s*(?:get|set): function/g)].map((m) => m[1]));
  let count = 0;
  const code = source.replace(FIELD_CALL, (call, indent, target, name, value) => {
    if (accessors.has(name) || !balanced(value)) return call;
    count++;
    return `${indent}${target}.${name} = ${value};`;
  });
  return { code, count };
}

/** Whether brackets outside strings pair up in `text` (a whole expression, not a cut one). */
function balanced(text) {
  let depth = 0;
  for (const ch of text.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, "")) {
    if ("([{".includes(ch)) depth++;
    else if (")]}".includes(ch) && --depth < 0) return false;
  }
  return depth === 0;
}

const jsPlumbFields = {
  name: "jsplumb-fields",
  setup(build) {
    build.onLoad({ filter: /jsplumb\.browser-ui\.es\.js$/ }, (args) => {
      const { code, count } = plainFields(readFileSync(args.path, "utf8"));
      if (count < 100) throw new Error(`jsPlumb's class fields were not found (${count}): has its build changed?`);
      return { contents: code, loader: "js" };
    });
  },
};

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
  plugins: [jsPlumbFields],
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
    plugins: [jsPlumbFields, { name: "index", setup: (build) => build.onEnd((result) => result.metafile && writeIndex(result.metafile)) }],
  });
  await context.watch();
  console.log("watching for changes…");
} else {
  const result = await esbuild.build(options);
  writeIndex(result.metafile);
}
