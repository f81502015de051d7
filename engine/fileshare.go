package engine

import (
	"context"
	"errors"
	"io"
	"sync"

	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/zoom"
)

// One file, a few workers: every worker reads the whole file itself,
// decodes every frame, snoops every DNS packet, and handles the packets of
// its share of the address pairs. Nothing passes between cores. With a
// reader handing packets over (runFile), each packet's bytes and its
// decoded form moved from the reader's core to a worker's: on two cores,
// two workers that way took 2.1× the CPU of one and more wall time.
// Reading and decoding a frame costs about a third of analysing it, so this
// wins while there are few workers, each on a core of its own; with more
// workers than that, or than sharedReadWorkers, the reader pipeline's
// single read wins (2 cores: 3 workers 0.65 s this way, 0.69 s through the
// pipeline; 4 workers 0.79 against 0.69 s).

// sharedReadWorkers is the most workers that each read the whole file.
const sharedReadWorkers = 4

// runFileEach analyses one file with every worker reading it whole.
func (e *Engine) runFileEach(ctx context.Context, in Input) error {
	errs := make([]error, len(e.workers))
	var wg sync.WaitGroup
	for i, w := range e.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = e.readShare(ctx, in, i, w)
		}()
	}
	wg.Wait()
	e.flushWorkers()
	e.finishEvidence()
	return errs[0] // every reader reads the same file: the first says what failed
}

// readShare reads in to its end and has w handle the packets of share i.
// Reader 0 alone counts frames, decode errors and own packets, and matches
// DNS answers in the engine's query table and names cache (its metrics);
// the others match in a table of their own, so each answer is trusted or
// refused once, and learn names into a cache of their own that only their
// worker reads. Each worker thus sees every name exactly as of its own
// place in the file: with one shared cache, a reader running ahead replaced
// (or evicted) the entry of an address that a lagging reader's flow still
// needed, and whether that flow was Zoom's depended on thread timing.
func (e *Engine) readShare(ctx context.Context, in Input, i int, w *worker) error {
	first := i == 0
	st := e.m.source(in.Label)
	ss := st.socket(0)
	src, err := in.Open()
	if err != nil {
		if first {
			ss.setErr(err)
		}
		return err
	}
	defer src.Close()
	stop := context.AfterFunc(ctx, func() { src.Close() })
	defer stop()
	if first {
		ss.setErr(nil)
		ss.up.Store(1)
		defer ss.up.Store(0)
	}
	count := frameCount{st: st}
	defer count.publish()
	dec := e.newDecoder()
	sn := e.newSnooper()
	if !first {
		sn.queries = newQueryTable(e.cfg.Zoom.DNSQueryTableBytes, e.cfg.Zoom.DNSAnswerWindow)
		sn.names = zoom.NewNameCache(e.cfg.Zoom.NameCacheSize)
		w.identity.UseNames(sn.names)
		defer w.identity.UseNames(e.names)
	}
	n := len(e.workers)
	var p decode.Packet
	for {
		data, ts, wireLen, link, err := src.ReadPacket()
		if err != nil {
			if errors.Is(err, io.EOF) || ctx.Err() != nil {
				return nil
			}
			if first {
				ss.setErr(err)
			}
			return err
		}
		if first {
			count.frame(ts)
		}
		if err := dec.Decode(data, link, ts, wireLen, &p); err != nil {
			if first {
				e.m.decodeError(err)
			}
			continue
		}
		sn.observe(&p)
		if e.isOwn(&p) {
			if first {
				e.ownPackets.Add(1)
			}
			continue
		}
		if shard(&p, n) == i {
			w.handle(&p)
		}
	}
}
