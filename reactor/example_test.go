package reactor_test

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"weft/reactor"
	"weft/transport/udp"
)

// A UDP reader goroutine posts each received batch to the shard that owns the
// session state; the shard arms a timer per batch and reacts when it fires.
func Example() {
	conn, err := udp.Listen("udp4", netip.MustParseAddrPort("127.0.0.1:0"), udp.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	const idleTimer = 1 // timer ids are chosen by the caller
	received := 0       // owned by shard 0: no lock needed
	r := reactor.New(reactor.Config{Shards: 1,
		OnTimer: func(shard int, now time.Time, id uint64) {
			fmt.Printf("timer %d on shard %d after %d packets\n", id, shard, received)
			cancel()
		}})
	sh := r.Shard(0)
	r.Go(func(ctx context.Context) error {
		defer context.AfterFunc(ctx, func() { conn.Close() })()
		for {
			msgs := make([]udp.Message, 8) // a pool in real code
			for i := range msgs {
				msgs[i].Buf = make([]byte, 1500)
			}
			n, err := conn.ReadBatch(msgs)
			if err != nil {
				return err // ignored by the reactor once ctx is done
			}
			sh.Post(func(now time.Time) {
				received += n
				sh.Schedule(idleTimer, now.Add(50*time.Millisecond)) // re-armed per batch
			})
		}
	})
	for range 3 {
		conn.WriteTo([]byte("ping"), conn.LocalAddr())
	}
	if err := r.Run(ctx); err != nil {
		fmt.Println(err)
	}
	// Output: timer 1 on shard 0 after 3 packets
}
