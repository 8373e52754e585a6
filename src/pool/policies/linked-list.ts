/**
 * The intrusive doubly linked list behind the eviction policies. Nodes carry their own links and
 * the list they sit in, so moving a key between recency lists (window, probation, protected) is a
 * few pointer writes and never allocates.
 */

/** A resident key's place in a recency list; owned by exactly one list at a time. */
export class ListNode<K> {
  readonly key: K;
  /** The key's 32-bit hash, computed once on admission so hits never rehash. */
  readonly hash: number;
  /** Towards the least recently used end. */
  prev: ListNode<K> | null = null;
  /** Towards the most recently used end. */
  next: ListNode<K> | null = null;
  /** The list holding this node, or null once removed. */
  list: LinkedList<K> | null = null;

  constructor(key: K, hash: number) {
    this.key = key;
    this.hash = hash;
  }
}

/** A recency-ordered list: `head` is the least recently used end, `tail` the most recent. */
export class LinkedList<K> {
  head: ListNode<K> | null = null;
  tail: ListNode<K> | null = null;
  size = 0;

  /** Appends a detached node at the most recently used end. */
  pushMru(node: ListNode<K>): void {
    node.list = this;
    node.next = null;
    node.prev = this.tail;
    if (this.tail === null) this.head = node;
    else this.tail.next = node;
    this.tail = node;
    this.size++;
  }

  /** Detaches a node of this list. */
  remove(node: ListNode<K>): void {
    const { prev, next } = node;
    if (prev === null) this.head = next;
    else prev.next = next;
    if (next === null) this.tail = prev;
    else next.prev = prev;
    node.prev = null;
    node.next = null;
    node.list = null;
    this.size--;
  }

  /** Marks a node of this list as the most recently used. */
  moveToMru(node: ListNode<K>): void {
    if (node === this.tail) return;
    this.remove(node);
    this.pushMru(node);
  }

  /** Keys from the least to the most recently used end. */
  *keys(): IterableIterator<K> {
    for (let node = this.head; node !== null; node = node.next) yield node.key;
  }
}
