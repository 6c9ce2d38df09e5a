/**
 * A small grammar language over bytes and special tokens, for constraints the
 * engine enforces token by token. It is context free (nodes may refer to one
 * another through `ref`, recursion included), so it can describe JSON shaped by
 * a JSON Schema; the engine runs it as a pushdown automaton (matcher.ts).
 *
 * Terminals: a byte string, a byte class, a special token, `text` (a run of
 * whole UTF-8 characters minus some ASCII bytes: the body of a quoted string)
 * and `anyBytes` (unconstrained text). `text` and `anyBytes` are loops the mask
 * computation knows how to skip (see mask.ts): that is what keeps the cost of a
 * step inside a string far below a walk of the whole vocabulary.
 */

interface Base {
  /** Unique within its grammar; part of the automaton's state keys. */
  readonly id: number;
  /** Can derive at least one finite string (set by GrammarBuilder.build). */
  productive: boolean;
}

export interface BytesNode extends Base {
  readonly kind: 'bytes';
  readonly bytes: Uint8Array;
}
export interface ClassNode extends Base {
  readonly kind: 'class';
  /** accepts[b] === 1 for each byte b of the class. */
  readonly accepts: Uint8Array;
}
export interface SpecialNode extends Base {
  readonly kind: 'special';
  /** The special token's id. */
  readonly token: number;
}
export interface SeqNode extends Base {
  readonly kind: 'seq';
  readonly items: readonly GrammarNode[];
}
export interface ChoiceNode extends Base {
  readonly kind: 'choice';
  readonly options: readonly GrammarNode[];
}
export interface StarNode extends Base {
  readonly kind: 'star';
  readonly item: GrammarNode;
}
export interface TextNode extends Base {
  readonly kind: 'text';
  /** excluded[b] === 1 for each ASCII byte that may not appear (bytes ≥ 0x80 form whole UTF-8 characters). */
  readonly excluded: Uint8Array;
  /** Identifies the excluded set, for the vocabulary's partition cache. */
  readonly className: string;
}
export interface AnyBytesNode extends Base {
  readonly kind: 'anyBytes';
}
export interface RefNode extends Base {
  readonly kind: 'ref';
  target?: GrammarNode;
}

export type GrammarNode = BytesNode | ClassNode | SpecialNode | SeqNode | ChoiceNode | StarNode | TextNode | AnyBytesNode | RefNode;

/** A grammar that cannot be run: a reference never defined, or a loop that consumes nothing. */
export class GrammarError extends Error {}

/** A grammar checked by GrammarBuilder.build, ready to run. */
export interface Grammar {
  readonly root: GrammarNode;
}

const encoder = new TextEncoder();

export class GrammarBuilder {
  private readonly nodes: GrammarNode[] = [];

  private add<T extends GrammarNode>(node: Omit<T, 'id' | 'productive'>): T {
    const full = { ...node, id: this.nodes.length, productive: false } as T;
    this.nodes.push(full);
    return full;
  }

  /** Exactly these bytes (a string is taken as UTF-8). The empty string matches nothing-consumed. */
  bytes(value: string | Uint8Array): GrammarNode {
    const bytes = typeof value === 'string' ? encoder.encode(value) : value;
    if (bytes.length === 0) return this.seq();
    return this.add<BytesNode>({ kind: 'bytes', bytes });
  }

  /** One byte among `chars` (ASCII). */
  oneOf(chars: string): ClassNode {
    const accepts = new Uint8Array(256);
    for (let i = 0; i < chars.length; i++) accepts[chars.charCodeAt(i)] = 1;
    return this.add<ClassNode>({ kind: 'class', accepts });
  }

  special(token: number): SpecialNode {
    return this.add<SpecialNode>({ kind: 'special', token });
  }

  seq(...items: GrammarNode[]): GrammarNode {
    const flat = items.flatMap((i) => (i.kind === 'seq' ? i.items : [i]));
    if (flat.length === 1) return flat[0];
    return this.add<SeqNode>({ kind: 'seq', items: flat });
  }

  /** One of the options; with none, a node that matches nothing (never productive). */
  choice(...options: GrammarNode[]): GrammarNode {
    if (options.length === 1) return options[0];
    return this.add<ChoiceNode>({ kind: 'choice', options });
  }

  optional(item: GrammarNode): GrammarNode {
    return this.choice(item, this.seq());
  }

  /** Zero or more of `item`, which must consume at least one byte. */
  star(item: GrammarNode): StarNode {
    return this.add<StarNode>({ kind: 'star', item });
  }

  /** Zero or more whole UTF-8 characters, none of them one of the ASCII `excluded` bytes. */
  text(excluded: (byte: number) => boolean): TextNode {
    const table = new Uint8Array(128);
    for (let b = 0; b < 128; b++) table[b] = excluded(b) ? 1 : 0;
    return this.add<TextNode>({ kind: 'text', excluded: table, className: `text:${Buffer.from(table).toString('hex')}` });
  }

  anyBytes(): AnyBytesNode {
    return this.add<AnyBytesNode>({ kind: 'anyBytes' });
  }

  /** A node to be defined later with `define` (for recursion). */
  ref(): RefNode {
    return this.add<RefNode>({ kind: 'ref' });
  }

  define(ref: RefNode, target: GrammarNode): void {
    ref.target = target;
  }

  /**
   * Checks that the grammar reachable from `root` can be run and marks the
   * productive nodes (the automaton never enters the others, so it never
   * starts something it cannot finish). Throws GrammarError.
   */
  check(root: GrammarNode): void {
    const undefinedRef = this.nodes.find((n) => n.kind === 'ref' && !n.target);
    if (undefinedRef) throw new GrammarError(`reference node ${undefinedRef.id} was never defined`);
    // Both properties follow the structure (a sequence: all items, a choice: any
    // option, a reference: its target); they differ on the leaves.
    const structural =
      (leaf: (n: GrammarNode) => boolean) =>
      (n: GrammarNode, val: (m: GrammarNode) => boolean): boolean => {
        switch (n.kind) {
          case 'seq':
            return n.items.every(val);
          case 'choice':
            return n.options.some(val);
          case 'ref':
            return val(n.target!);
          default:
            return leaf(n);
        }
      };
    const nullable = fixpoint(this.nodes, structural((n) => n.kind === 'star' || n.kind === 'text' || n.kind === 'anyBytes'));
    const productive = fixpoint(this.nodes, structural(() => true));
    for (const n of this.nodes) {
      n.productive = productive[n.id];
      if (n.kind === 'star' && nullable[n.item.id]) throw new GrammarError('a repeated item must consume input');
    }
    checkNoLeftRecursion(root, nullable);
  }

  build(root: GrammarNode): Grammar {
    this.check(root);
    return { root };
  }
}

/** Least fixpoint of a boolean property over the nodes (false until proven true). */
function fixpoint(nodes: readonly GrammarNode[], rule: (n: GrammarNode, val: (m: GrammarNode) => boolean) => boolean): boolean[] {
  const value = new Array<boolean>(nodes.length).fill(false);
  const val = (m: GrammarNode) => value[m.id];
  for (let changed = true; changed; ) {
    changed = false;
    for (const n of nodes) {
      if (!value[n.id] && rule(n, val)) {
        value[n.id] = true;
        changed = true;
      }
    }
  }
  return value;
}

/**
 * A node that can reach itself without consuming input would send the
 * automaton's expansion into an endless loop (a schema whose `$ref` points back
 * to itself with no object or array in between, for one). Cycle search (DFS,
 * iterative: recursive schemas nest deeper than the call stack likes) over the
 * "can start with" edges.
 */
function checkNoLeftRecursion(root: GrammarNode, nullable: boolean[]): void {
  const leftChildren = (n: GrammarNode): readonly GrammarNode[] => {
    switch (n.kind) {
      case 'seq': {
        const out: GrammarNode[] = [];
        for (const item of n.items) {
          out.push(item);
          if (!nullable[item.id]) break;
        }
        return out;
      }
      case 'choice':
        return n.options;
      case 'star':
        return [n.item];
      case 'ref':
        return [n.target!];
      default:
        return [];
    }
  };
  const state = new Map<number, 'open' | 'done'>();
  for (const start of reachable(root)) {
    if (state.has(start.id)) continue;
    state.set(start.id, 'open');
    const stack = [{ node: start, children: leftChildren(start), next: 0 }];
    while (stack.length > 0) {
      const top = stack[stack.length - 1];
      if (top.next === top.children.length) {
        state.set(top.node.id, 'done');
        stack.pop();
        continue;
      }
      const child = top.children[top.next++];
      const s = state.get(child.id);
      if (s === 'open') throw new GrammarError('the grammar can loop back to the same place without consuming input (left recursion)');
      if (s === undefined) {
        state.set(child.id, 'open');
        stack.push({ node: child, children: leftChildren(child), next: 0 });
      }
    }
  }
}

function reachable(root: GrammarNode): GrammarNode[] {
  const seen = new Set<number>([root.id]);
  const out: GrammarNode[] = [root];
  for (let i = 0; i < out.length; i++) {
    const n = out[i];
    const children = n.kind === 'seq' ? n.items : n.kind === 'choice' ? n.options : n.kind === 'star' ? [n.item] : n.kind === 'ref' ? [n.target!] : [];
    for (const c of children) {
      if (!seen.has(c.id)) {
        seen.add(c.id);
        out.push(c);
      }
    }
  }
  return out;
}
