/**
 * How a ServiceRouter derives its connection deadlines from the one setting users give it,
 * `heartbeatTimeout`. Pure, so tests derive their own deadlines from the same numbers instead of
 * guessing a fixed time.
 */

export interface ConnectionTimings {
  /** Silence after an unanswered PING that closes a connection. */
  heartbeatTimeoutMs: number;
  /** PING period: a few PINGs per timeout, so one lost PONG is not fatal; 20 ms … 2 s. */
  heartbeatIntervalMs: number;
  /**
   * Deadline for a new connection's ZMTP handshake: the heartbeat timeout, within 1 s … 30 s (below
   * 1 s a loaded machine fails good handshakes; above 30 s a stalled one holds its socket too long).
   */
  handshakeIntervalMs: number;
  /** When keys are required: time from the ZMTP handshake to a welcomed HELLO (or a valid BEAT). */
  helloTimeoutMs: number;
  /**
   * The latest a router closes a peer that has stopped talking at any stage (greeting, handshake,
   * HELLO, mid-frame, or silent after all that), timers running on time: a handshake deadline,
   * then a HELLO deadline, or the heartbeat's worst case (last traffic, first PING up to an
   * interval later, the timeout, and up to one more tick to notice).
   */
  silentPeerClosedWithinMs: number;
}

export function connectionTimings(heartbeatTimeoutSeconds: number): ConnectionTimings {
  const heartbeatTimeoutMs = Math.round(heartbeatTimeoutSeconds * 1000);
  const heartbeatIntervalMs = Math.max(20, Math.min(2000, Math.round(heartbeatTimeoutMs / 4)));
  const handshakeIntervalMs = Math.max(1000, Math.min(30_000, heartbeatTimeoutMs));
  const helloTimeoutMs = handshakeIntervalMs;
  const heartbeatWorstMs = heartbeatTimeoutMs + 2 * heartbeatIntervalMs;
  return {
    heartbeatTimeoutMs,
    heartbeatIntervalMs,
    handshakeIntervalMs,
    helloTimeoutMs,
    silentPeerClosedWithinMs: Math.max(handshakeIntervalMs + helloTimeoutMs, handshakeIntervalMs + heartbeatWorstMs),
  };
}
