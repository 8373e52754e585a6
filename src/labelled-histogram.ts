/**
 * A Prometheus histogram with labels, for what is observed on every run. prom-client's Histogram
 * checks and hashes the label object on every observation, and its children do too (about half
 * a microsecond, two or three times a run); here a series is found by one Map lookup per label
 * value and counted in a core {@link Histogram}. It registers in a prom-client registry like any
 * metric and exposes what prom-client's Histogram would, byte for byte: series in the order of
 * their first observation, each bucket's `le` before the series' labels. It holds one series per
 * label set observed, as prom-client's does: the labels' cardinality is its bound.
 */
import { format } from 'node:util';
import { Histogram, type HistogramSnapshot } from './core/metrics.ts';

/** A sample as prom-client's registry formats it: `name{labels…,sharedLabels…} value`. */
export interface HistogramSample {
  readonly metricName: string;
  readonly labels: Readonly<Record<string, string | number>>;
  readonly sharedLabels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** What prom-client's registry reads of a histogram. */
export interface CollectedHistogram {
  readonly name: string;
  readonly help: string;
  readonly type: 'histogram';
  readonly aggregator: 'sum';
  get(): {
    name: string;
    help: string;
    type: 'histogram';
    aggregator: 'sum';
    values: HistogramSample[];
  };
}

/**
 * The samples of one series, as prom-client's Histogram lays them out: the cumulative buckets,
 * `+Inf`, `_sum`, `_count`. Bounds and sum are divided by `scale` (1000 for a snapshot in ms
 * exposed in seconds).
 */
export function histogramSamples(
  name: string,
  snapshot: HistogramSnapshot,
  labels: Readonly<Record<string, string>>,
  scale = 1,
): HistogramSample[] {
  const metricName = `${name}_bucket`;
  let cumulative = 0;
  const samples: HistogramSample[] = snapshot.buckets.map((le, i) => {
    cumulative += snapshot.counts[i] ?? 0;
    return { metricName, labels: { le: le / scale }, sharedLabels: labels, value: cumulative };
  });
  samples.push(
    { metricName, labels: { le: '+Inf' }, sharedLabels: labels, value: snapshot.count },
    { metricName: `${name}_sum`, labels: {}, sharedLabels: labels, value: snapshot.sum / scale },
    { metricName: `${name}_count`, labels: {}, sharedLabels: labels, value: snapshot.count },
  );
  return samples;
}

/** What configures a {@link LabelledHistogram}. */
export interface LabelledHistogramConfig<L extends string> {
  readonly name: string;
  readonly help: string;
  /** In the order a series' labels are exposed. */
  readonly labelNames: readonly L[];
  /** Upper bounds, ascending. */
  readonly buckets: readonly number[];
}

interface Series {
  readonly labels: Readonly<Record<string, string>>;
  readonly histogram: Histogram;
}

/** Series by the value of the first label, then of the next, …: no key string is built per observation. */
type Index = Map<string, Index | Series>;

/** A labelled histogram family whose observations cost a Map lookup per label (see the file header). */
export class LabelledHistogram<L extends string> implements CollectedHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly #labelNames: readonly L[];
  readonly #buckets: readonly number[];
  readonly #index: Index = new Map();
  /** In the order of first observation, the order of the exposition. */
  readonly #series: Series[] = [];

  constructor(config: LabelledHistogramConfig<L>) {
    // Without labels there is one series: the core Histogram and snapshot samples suffice.
    if (config.labelNames.length === 0) throw new TypeError(`${config.name} needs at least one label`);
    this.name = config.name;
    this.help = config.help;
    this.#labelNames = config.labelNames;
    this.#buckets = config.buckets;
  }

  /** Counts `value` in the series of `labels`; a value that is not a finite number is refused as prom-client refuses it. */
  observe(labels: Readonly<Record<L, string>>, value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${format(value)}`);
    const names = this.#labelNames;
    const last = names.length - 1;
    let level = this.#index;
    for (let i = 0; i < last; i++) {
      const label = labels[names[i] as L];
      let next = level.get(label) as Index | undefined;
      if (next === undefined) level.set(label, (next = new Map()));
      level = next;
    }
    const label = labels[names[last] as L];
    let series = level.get(label) as Series | undefined;
    if (series === undefined) {
      const own: Record<string, string> = {};
      for (const name of names) own[name] = labels[name];
      series = { labels: own, histogram: new Histogram(this.#buckets) };
      level.set(label, series);
      this.#series.push(series);
    }
    series.histogram.observe(value);
  }

  get(): ReturnType<CollectedHistogram['get']> {
    const values: HistogramSample[] = [];
    for (const { labels, histogram } of this.#series) {
      values.push(...histogramSamples(this.name, histogram.snapshot(), labels));
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
