/** One piece of an execution's output, in the order the program wrote it. */
export type OutputChunk = { stream: 'stdout' | 'stderr'; data: Buffer };

export interface OutputFollower {
  onChunk(chunk: OutputChunk): void;
  onEnd(): void;
}

/**
 * What a running execution has printed so far (within the output caps), in order, and
 * who follows it: a client that reconnects gets everything from the start, then the rest
 * as it comes. Memory only, for the execution's life on this instance; afterwards its
 * output is read from the database.
 */
export class LiveOutput {
  private readonly chunks: OutputChunk[] = [];
  private readonly followers = new Set<OutputFollower>();
  private ended = false;

  push(stream: OutputChunk['stream'], data: Buffer): void {
    const chunk = { stream, data: Buffer.from(data) };
    this.chunks.push(chunk);
    for (const f of this.followers) f.onChunk(chunk);
  }

  /** Replays what was printed, then follows; returns the unfollow. */
  follow(follower: OutputFollower): () => void {
    for (const chunk of this.chunks) follower.onChunk(chunk);
    if (this.ended) {
      follower.onEnd();
      return () => undefined;
    }
    this.followers.add(follower);
    return () => this.followers.delete(follower);
  }

  end(): void {
    this.ended = true;
    for (const f of this.followers) f.onEnd();
    this.followers.clear();
  }
}
