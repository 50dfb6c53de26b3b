// Package reactor is weft's event core: a small set of shards, each one
// goroutine that owns protocol state and a hashed timing wheel.
//
// Sources (socket and TUN readers) run on goroutines of their own, started with
// Reactor.Go. They read in batches and Post the batch to the shard that owns
// the state the batch belongs to. Everything a shard owns is touched only from
// its goroutine — inside posted functions and timer callbacks — so protocol
// code needs no locks.
//
// Timers are identified by a caller-chosen uint64 (for example a session id
// combined with a timer kind). Shard.Schedule arms or re-arms one, Shard.Cancel
// disarms it, and the shard calls its OnTimer callback when it is due. Time is
// read from an injected Clock, and the shard sleeps on ordinary runtime timers,
// so the loop runs deterministically under testing/synctest.
//
// A typical set-up:
//
//	r := reactor.New(reactor.Config{Shards: 1, Logger: log,
//		OnTimer: func(shard int, now time.Time, id uint64) { sess.OnTimer(now, id) }})
//	sh := r.Shard(0)
//	r.Go(func(ctx context.Context) error {
//		stop := context.AfterFunc(ctx, func() { conn.Close() })
//		defer stop()
//		for {
//			msgs := pool.Get() // []udp.Message with buffers
//			n, err := conn.ReadBatch(msgs)
//			if err != nil {
//				return ctx.Err() // nil-ish on shutdown, else the read error
//			}
//			sh.Post(func(now time.Time) { sess.HandleUDP(now, msgs[:n]); pool.Put(msgs) })
//		}
//	})
//	sh.Post(func(now time.Time) { sh.Schedule(keepaliveID, now.Add(10*time.Second)) })
//	err := r.Run(ctx)
package reactor
