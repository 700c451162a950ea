/** Mean of the most recent finished episodes, kept across iterations (and checkpoints). */
export class EpisodeWindow {
  returns: number[] = [];
  lengths: number[] = [];
  constructor(readonly size: number) {}
  add(ret: number, length: number): void {
    this.returns.push(ret);
    this.lengths.push(length);
    if (this.returns.length > this.size) {
      this.returns.shift();
      this.lengths.shift();
    }
  }
  mean(values: number[]): number {
    return values.length ? values.reduce((a, b) => a + b, 0) / values.length : 0;
  }
}
