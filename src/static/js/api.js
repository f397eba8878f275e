// The REST client: the only module that talks to the server (fetch and EventSource).

/** An error answer from the server: status, message and the per-field details it listed. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error || `request failed with status ${status}`);
    this.status = status;
    this.body = body || {};
    this.details = Array.isArray(body?.details) ? body.details : [];
  }
}

// index.html asks for what the editor needs first while the editor's code loads: each of those answers
// ({response, text}, read whole) is taken once, by the first GET of its address.
function earlyAnswer(method, url) {
  const early = window.pyflowEarly;
  if (method !== "GET" || !early?.has(url)) return null;
  const answer = early.get(url);
  early.delete(url);
  return answer;
}

// The server refuses writes that an HTML form on another site could send: a write carries a JSON body,
// or no body and X-Requested-With, which no page can send cross-site without the server's consent.
// (Same-origin, the header costs no preflight.) The session cookie goes along by itself.
async function request(method, path, { body, etag, query } = {}) {
  const headers = { Accept: "application/json", "X-Requested-With": "pyflow" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (etag) headers["If-Match"] = etag;
  const url = query ? `${path}?${new URLSearchParams(query)}` : path;
  let response;
  let text;
  try {
    const early = earlyAnswer(method, url);
    if (early) ({ response, text } = await early);
    else response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (error) {
    throw new ApiError(0, { error: `the server cannot be reached (${error.message})` });
  }
  text ??= await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { error: text.slice(0, 200) };
  }
  // The session ended (a new token on the server): the login page, which works without this bundle.
  if (response.status === 401) window.location.assign("/login");
  if (!response.ok) throw new ApiError(response.status, data);
  return { data, etag: response.headers.get("ETag"), status: response.status, headers: response.headers };
}

const enc = encodeURIComponent;
const data = (promise) => promise.then((answer) => answer.data);
const record = (promise) => promise.then(({ data: doc, etag }) => ({ doc, etag }));

export const api = {
  health: () => data(request("GET", "/api/health")),
  portTypes: () => data(request("GET", "/api/port-types")),
  schema: (name) => data(request("GET", `/api/schemas/${enc(name)}`)),

  // Nodespecs
  listSpecs: () => data(request("GET", "/api/nodespecs")),
  specTree: () => data(request("GET", "/api/nodespecs/tree")),
  subflows: () => data(request("GET", "/api/subflows")),
  getSpec: (id) => record(request("GET", `/api/nodespecs/${enc(id)}`)),
  createSpec: (doc) => record(request("POST", "/api/nodespecs", { body: doc })),
  saveSpec: (id, doc, etag) => record(request("PUT", `/api/nodespecs/${enc(id)}`, { body: doc, etag })),
  deleteSpec: (id, { etag, force = false } = {}) =>
    data(request("DELETE", `/api/nodespecs/${enc(id)}`, { etag, query: force ? { force: "true" } : undefined })),
  inferPorts: (source) => data(request("POST", "/api/nodespecs/infer", { body: { func: source } })),
  testDraftSpec: (nodespec, inputs) => data(request("POST", "/api/nodespecs/test", { body: { nodespec, inputs } })),

  // Flows
  // Summaries only: a list of big flows should not download every node and link.
  listFlows: () => data(request("GET", "/api/flows", { query: { summary: "true" } })),
  getFlow: (id) => record(request("GET", `/api/flows/${enc(id)}`)),
  createFlow: (doc) => record(request("POST", "/api/flows", { body: doc })),
  saveFlow: (id, doc, etag) => record(request("PUT", `/api/flows/${enc(id)}`, { body: doc, etag })),
  deleteFlow: (id, etag) => data(request("DELETE", `/api/flows/${enc(id)}`, { etag })),

  // Runs
  startRun: (flow, { values, cache } = {}) => {
    const body = { flow };
    if (values) body.values = values;
    if (cache !== undefined) body.cache = cache;
    return data(request("POST", "/api/runs", { body }));
  },
  listRuns: ({ flow, status, limit = 30, offset = 0 } = {}) => {
    const query = { limit, offset };
    if (flow) query.flow = flow;
    if (status) query.status = status;
    return data(request("GET", "/api/runs", { query }));
  },
  getRun: (id) => data(request("GET", `/api/runs/${enc(id)}`)),
  cancelRun: (id) => data(request("POST", `/api/runs/${enc(id)}/cancel`)),
  deleteRun: (id) => data(request("DELETE", `/api/runs/${enc(id)}`)),

  /**
   * Follow a run's Server-Sent Events. `handlers` maps event names to callbacks taking the parsed data;
   * `onError` hears of a lost stream. EventSource resumes with Last-Event-ID on its own after a drop.
   * Returns a function that closes the stream.
   */
  followRun(id, handlers, onError) {
    const source = new EventSource(`/api/runs/${enc(id)}/events`);
    for (const [name, handler] of Object.entries(handlers)) {
      source.addEventListener(name, (event) => handler(JSON.parse(event.data), event));
    }
    source.addEventListener("run_finished", () => source.close());
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED && onError) onError();
    };
    return () => source.close();
  },

  // Environments of third-party packages
  listEnvironments: () => data(request("GET", "/api/environments")),
  prepareEnvironment: (requirements) => data(request("POST", "/api/environments", { body: { requirements } })),
  pruneEnvironments: (body) => data(request("POST", "/api/environments/prune", { body })),

  // Repository
  async exportRepository() {
    const { data: bundle, headers } = await request("GET", "/api/repository/export");
    const disposition = headers.get("Content-Disposition") || "";
    const match = /filename="?([^";]+)"?/.exec(disposition);
    return { bundle, filename: match ? match[1] : "pyflow-repository.json" };
  },
  previewImport: (bundle) => data(request("POST", "/api/repository/import/preview", { body: bundle })),
  importRepository: (bundle, mode) =>
    data(request("POST", "/api/repository/import", { body: bundle, query: { mode } })),
};
