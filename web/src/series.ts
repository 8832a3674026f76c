// Live time series for the charts: a bounded window of (time, values...)
// rows kept in uPlot's column layout.

export class LiveSeries {
  readonly times: number[] = [];
  readonly columns: number[][];

  constructor(
    readonly names: string[],
    private readonly windowSeconds = 300,
    private readonly maxPoints = 2000,
  ) {
    this.columns = names.map(() => []);
  }

  // Adds a row at `time` (seconds); rows out of order are inserted in place,
  // a row at an existing time replaces it.
  add(time: number, values: number[]): void {
    let i = this.times.length;
    while (i > 0 && this.times[i - 1] > time) i--;
    if (i > 0 && this.times[i - 1] === time) {
      this.columns.forEach((c, k) => (c[i - 1] = values[k]));
    } else {
      this.times.splice(i, 0, time);
      this.columns.forEach((c, k) => c.splice(i, 0, values[k]));
    }
    this.trim();
  }

  private trim(): void {
    const newest = this.times[this.times.length - 1] ?? 0;
    let drop = 0;
    while (drop < this.times.length && this.times[drop] < newest - this.windowSeconds) drop++;
    drop = Math.max(drop, this.times.length - this.maxPoints);
    if (drop > 0) {
      this.times.splice(0, drop);
      this.columns.forEach((c) => c.splice(0, drop));
    }
  }

  data(): [number[], ...number[][]] {
    return [this.times, ...this.columns];
  }
}
