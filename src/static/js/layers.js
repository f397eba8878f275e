// Where the canvas puts its many absolutely positioned elements (nodes, jsPlumb's link and handle SVGs).
//
// A flow of 1,000 nodes has some 2,500 of them. Were they all children of one element, moving a single
// node would make the browser re-run the positioned layout of every sibling, on every drag step. So each
// kind lives in small "buckets": zero-size boxes at the viewport's origin with size and layout
// containment, which makes each one a layout boundary. A drag step then lays out only the buckets
// holding what moved. Buckets sit at (0, 0) and do not transform, so coordinates inside them are the
// viewport's (which is what jsPlumb computes), and their z-index orders the kinds: nodes, then links,
// then port handles, then nodes being dragged.

const BUCKET_SIZE = 32;

export class Layer {
  constructor(parent, kind, size = BUCKET_SIZE) {
    this.parent = parent;
    this.kind = kind;
    this.size = size;
    this.buckets = [];
    this.open = null; // the bucket that last had room
  }

  add(el) {
    let bucket = this.open;
    if (!bucket || bucket.childElementCount >= this.size) {
      bucket = this.buckets.find((b) => b.childElementCount < this.size);
      if (!bucket) {
        bucket = document.createElement("div");
        bucket.className = `bucket bucket-${this.kind}`;
        this.parent.append(bucket);
        this.buckets.push(bucket);
      }
      this.open = bucket;
    }
    bucket.append(el);
  }

  /** Forget the buckets (the caller has emptied the parent). */
  reset() {
    this.buckets = [];
    this.open = null;
  }
}
