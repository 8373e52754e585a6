/**
 * The event bus of a cluster node: the node's own in-process bus (events/bus.ts), plus the events
 * every node must hear (registry changes, `agent.*`) relayed through one Redis pub/sub channel,
 * `{prefix}events`. Emitting stays synchronous and local first, exactly as on the local bus; an
 * event the `relay` predicate picks is also published as `{ node, event }` JSON, and each node
 * emits the messages of the other nodes on its local bus (never publishing them again, and
 * ignoring its own).
 *
 * Pub/sub delivers at most once: a message published while a node's subscriber connection is down
 * never reaches that node. So the bus tells its owner when the subscription was restored
 * (`onResubscribed`), and the owner re-reads what it may have missed (the pool re-reads agent
 * changes from the store's change feed). A publish that fails is logged, never thrown: the emitter
 * is on a hot path and its local listeners already had the event.
 */
import type { Redis } from 'ioredis';
import { type Logger, silentLogger } from '../../core/logger.ts';
import {
  type BusEvent,
  type EventBus,
  type EventOf,
  type Listener,
  LocalEventBus,
} from '../../events/bus.ts';

/** What the bus talks to. */
export interface RedisEventBusDeps<E extends BusEvent> {
  /** A command connection (connection.ts), for publishing; the bus does not close it. */
  redis: Redis;
  /**
   * A connection in subscribe mode, shared with the node's other subscribers: the bus subscribes
   * to its own channel only, and neither unsubscribes others' channels nor closes it.
   */
  subscriber: Redis;
  /** Prefix of the channel. */
  prefix: string;
  /** This node's id: its own messages, coming back through Redis, are ignored. */
  nodeId: string;
  /** True for the events other nodes must hear (e.g. `agent.*`); the rest stay on this node. */
  relay: (event: E) => boolean;
  /** The node's in-process bus. @default a new one reporting listener errors to `logger` */
  local?: LocalEventBus<E>;
  /** @default silent */
  logger?: Logger;
}

/** The message published for a relayed event. */
interface Relayed<E> {
  readonly node: string;
  readonly event: E;
}

/** An event bus whose relayed events reach every node sharing a Redis (and prefix). */
export class RedisEventBus<E extends BusEvent> implements EventBus<E> {
  /** The channel relayed events travel on. */
  readonly channel: string;
  readonly #redis: Redis;
  readonly #subscriber: Redis;
  readonly #node: string;
  readonly #relay: (event: E) => boolean;
  readonly #local: LocalEventBus<E>;
  readonly #log: Logger;
  readonly #resubscribed = new Set<() => void>();
  readonly #subscribed: Promise<void>;
  readonly #onMessage = (channel: string, message: string) => {
    if (channel === this.channel) this.#receive(message);
  };
  readonly #onReady = () => {
    void this.#subscribe().then((ok) => {
      if (ok) this.#announceResubscribed();
    });
  };
  #closed = false;

  constructor(deps: RedisEventBusDeps<E>) {
    this.channel = `${deps.prefix}events`;
    this.#redis = deps.redis;
    this.#subscriber = deps.subscriber;
    this.#node = deps.nodeId;
    this.#relay = deps.relay;
    this.#log = (deps.logger ?? silentLogger()).child({ component: 'event-bus' });
    this.#local =
      deps.local ??
      new LocalEventBus<E>({
        onListenerError: (err, event) =>
          this.#log.error({ err, type: event.type }, 'an event listener threw'),
      });
    this.#subscriber.on('message', this.#onMessage);
    // 'ready' comes after every reconnect: ioredis resubscribes by itself, and subscribing again
    // here confirms it (or does it, when the first subscribe failed) before listeners are told.
    this.#subscriber.on('ready', this.#onReady);
    this.#subscribed = this.#subscribe().then(() => undefined);
  }

  /**
   * Resolves once the first subscribe was answered (or failed, logged: the next reconnect
   * subscribes). Events other nodes publish before that are not heard.
   */
  ready(): Promise<void> {
    return this.#subscribed;
  }

  /** Delivers to this node's listeners now, and publishes to the other nodes when relayed. */
  emit(event: E): void {
    this.#local.emit(event);
    if (this.#closed || !this.#relay(event)) return;
    let message: string;
    try {
      message = JSON.stringify({ node: this.#node, event } satisfies Relayed<E>);
    } catch (err) {
      this.#log.error({ err, type: event.type }, 'an event cannot be serialised: not relayed');
      return;
    }
    this.#redis.publish(this.channel, message).catch((err: unknown) => {
      this.#log.warn({ err, type: event.type }, 'an event could not be relayed to the other nodes');
    });
  }

  on<T extends E['type'] | '*'>(type: T, listener: Listener<EventOf<E, T>>): () => void {
    return this.#local.on(type, listener);
  }

  hasListeners(type: E['type']): boolean {
    return this.#local.hasListeners(type);
  }

  /**
   * Calls `listener` each time the subscription was restored after the subscriber connection
   * was lost: events relayed meanwhile were not heard. Returns the function that removes it.
   */
  onResubscribed(listener: () => void): () => void {
    this.#resubscribed.add(listener);
    return () => this.#resubscribed.delete(listener);
  }

  /** Unsubscribes the bus's channel; the connections stay open (the bus does not own them). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#subscriber.off('ready', this.#onReady);
    this.#subscriber.off('message', this.#onMessage);
    this.#resubscribed.clear();
    await this.#subscriber.unsubscribe(this.channel).catch((err: unknown) => {
      this.#log.debug({ err }, 'could not unsubscribe from the events channel');
    });
  }

  /** Subscribes to the channel; false (logged) when the connection cannot do it now. */
  async #subscribe(): Promise<boolean> {
    if (this.#closed) return false;
    try {
      await this.#subscriber.subscribe(this.channel);
      return !this.#closed;
    } catch (err) {
      this.#log.warn({ err }, 'could not subscribe to the events channel: other nodes are not heard');
      return false;
    }
  }

  #announceResubscribed(): void {
    this.#log.info('resubscribed to the events channel: events of other nodes may have been missed');
    for (const listener of [...this.#resubscribed]) {
      try {
        listener();
      } catch (err) {
        this.#log.error({ err }, 'a resubscription listener threw');
      }
    }
  }

  #receive(message: string): void {
    let relayed: Partial<Relayed<E>> | null;
    try {
      relayed = JSON.parse(message) as Partial<Relayed<E>> | null;
    } catch (err) {
      this.#log.warn({ err }, 'an unreadable message on the events channel was ignored');
      return;
    }
    if (relayed?.node === this.#node) return;
    const event = relayed?.event;
    if (typeof event !== 'object' || event === null || typeof event.type !== 'string') {
      this.#log.warn('a message without an event on the events channel was ignored');
      return;
    }
    this.#local.emit(event);
  }
}
