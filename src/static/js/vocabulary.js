// The words and patterns the editor shares with the server, read from it once at start (GET
// /api/port-types and GET /api/schemas/nodespec) rather than copied here: the yes/no words of Boolean
// values and flags (is_end, required), the port type names, and the pattern object ids must match.
// No DOM and no requests here: the catalog fetches both documents and hands them over.

const vocabulary = {
  trueWords: new Set(),
  typeNames: [],
  idPattern: null,
  idForbidden: null,
};

/** Fill the vocabulary from the server's port types and nodespec schema. */
export function setVocabulary(types, schema) {
  const boolean = types.find((type) => type.name === "Boolean");
  vocabulary.trueWords = new Set(boolean?.true_words || []);
  vocabulary.typeNames = types.map((type) => type.name);
  const objectId = schema.$defs.objectId;
  vocabulary.idPattern = new RegExp(objectId.pattern);
  vocabulary.idForbidden = objectId.not?.pattern ? new RegExp(objectId.not.pattern) : null;
}

/** The server's reading of a flag or Boolean value: one of its true words (any case), else JS truth. */
export function truthy(value) {
  if (typeof value === "string") return vocabulary.trueWords.has(value.trim().toLowerCase());
  return Boolean(value);
}

/** The port type names the server knows, in its order (empty until loaded). */
export const typeNames = () => vocabulary.typeNames;

/** Whether `id` is a valid nodespec or flow id (true until the pattern is loaded: the server decides). */
export function validId(id) {
  if (!vocabulary.idPattern) return true;
  return vocabulary.idPattern.test(id) && !(vocabulary.idForbidden && vocabulary.idForbidden.test(id));
}
