// Type declarations for vitalsign. The metric API matches web-vitals 6.

export type MetricName = 'FCP' | 'LCP' | 'CLS' | 'INP' | 'TTFB';
export type MetricRating = 'good' | 'needs-improvement' | 'poor';
export type NavigationType =
  | 'navigate'
  | 'reload'
  | 'back-forward'
  | 'back-forward-cache'
  | 'prerender'
  | 'restore';

export interface Metric {
  name: MetricName;
  /** Milliseconds, or unitless for CLS. */
  value: number;
  rating: MetricRating;
  /** Change since the last report of this metric instance. */
  delta: number;
  /** Unique per metric instance: later reports with the same id replace earlier ones. */
  id: string;
  entries: PerformanceEntry[];
  navigationType: NavigationType;
}

export interface FCPMetric extends Metric { name: 'FCP'; entries: PerformancePaintTiming[] }
export interface LCPMetric extends Metric { name: 'LCP'; entries: PerformanceEntry[] }
export interface CLSMetric extends Metric { name: 'CLS'; entries: PerformanceEntry[] }
export interface INPMetric extends Metric { name: 'INP'; entries: PerformanceEventTiming[] }
export interface TTFBMetric extends Metric { name: 'TTFB'; entries: PerformanceNavigationTiming[] }

export interface ReportOpts {
  /** Report every change, not only final values. */
  reportAllChanges?: boolean;
}

export interface INPReportOpts extends ReportOpts {
  /** Minimum event duration observed, in ms (default 40). */
  durationThreshold?: number;
}

export type MetricRatingThresholds = [number, number];

export function onFCP(callback: (metric: FCPMetric) => void, opts?: ReportOpts): void;
export function onLCP(callback: (metric: LCPMetric) => void, opts?: ReportOpts): void;
export function onCLS(callback: (metric: CLSMetric) => void, opts?: ReportOpts): void;
export function onINP(callback: (metric: INPMetric) => void, opts?: INPReportOpts): void;
export function onTTFB(callback: (metric: TTFBMetric) => void, opts?: ReportOpts): void;

export const FCPThresholds: MetricRatingThresholds;
export const LCPThresholds: MetricRatingThresholds;
export const CLSThresholds: MetricRatingThresholds;
export const INPThresholds: MetricRatingThresholds;
export const TTFBThresholds: MetricRatingThresholds;

/** One metric report as sent to the collector. */
export interface BeaconMetric {
  name: MetricName;
  value: number;
  delta: number;
  id: string;
  rating: MetricRating;
  navigationType: NavigationType;
}

/** The JSON body sent to the collector (see beacon.schema.json). */
export interface Beacon {
  schemaVersion: 1;
  /** Page key: URL without query and fragment, identifiers replaced by `:id`. */
  page: string;
  pageViewId?: string;
  sessionId?: string;
  navigationType?: NavigationType;
  formFactor?: 'phone' | 'tablet' | 'desktop';
  effectiveType?: string;
  deviceMemory?: number;
  metrics: BeaconMetric[];
}

export interface InitOpts {
  /** Collector URL (default `/v1/beacon`). */
  endpoint?: string;
  /** Share of sessions measured, 0 to 1 (default 1), decided once per session. */
  sampleRate?: number;
  /** How often a visible page sends what it has, in ms (default 10000). */
  flushInterval?: number;
  /** Queue size that triggers a send, in bytes of JSON (default 16384). */
  maxQueueBytes?: number;
  /** Store and send nothing until `grantConsent()` (default false). */
  requireConsent?: boolean;
  /** Route patterns (`/products/:id`, `/blog/*`): a matching page is keyed by its pattern. */
  routes?: string[];
  /** Query keys kept in the page key (all others are dropped). */
  queryKeys?: string[];
  /** Computes the page key from the page URL; replaces the default. */
  pageKey?: (url: string) => string;
  /** Edits a beacon before it is sent; return null or false to drop it. */
  beforeSend?: (beacon: Beacon) => Beacon | null | false | void;
}

/** Measures all five metrics and sends them to the collector. */
export function init(opts?: InitOpts): void;
/** With `requireConsent`: starts storing and sending. */
export function grantConsent(): void;
/** Stops sending and clears stored data. */
export function revokeConsent(): void;
/** Resolves to true once the agent runs, false where it cannot (no WebAssembly). */
export function loaded(): Promise<boolean>;
