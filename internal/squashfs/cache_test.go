package squashfs

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testLoader fills a block with its position's low byte, after a pause,
// counting the loads of each position; position 13 fails.
type testLoader struct {
	mu    sync.Mutex
	count map[uint64]int
	pause time.Duration
}

func (l *testLoader) load(b *block) error {
	l.mu.Lock()
	l.count[b.key.pos]++
	l.mu.Unlock()
	time.Sleep(l.pause)
	if b.key.pos == 13 {
		return errors.New("bad block")
	}
	for i := range b.data {
		b.data[i] = byte(b.key.pos)
	}
	b.next = b.key.pos + 1
	return nil
}

// loads returns how many times pos was loaded.
func (l *testLoader) loads(pos uint64) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.count[pos]
}

func TestCacheSharesOneLoad(t *testing.T) {
	l := &testLoader{count: map[uint64]int{}, pause: 20 * time.Millisecond}
	c := newCache(4, 64, l.load)
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := c.get(blockKey{pos: 7})
			if err != nil {
				t.Error(err)
				return
			}
			if b.data[0] != 7 || b.next != 8 || len(b.data) != 64 {
				t.Errorf("block = %v, next %d", b.data[:4], b.next)
			}
			c.release(b)
		}()
	}
	wg.Wait()
	if n := l.count[7]; n != 1 {
		t.Errorf("16 concurrent readers loaded the block %d times, want 1", n)
	}
}

func TestCacheBoundAndLRU(t *testing.T) {
	l := &testLoader{count: map[uint64]int{}}
	c := newCache(3, 16, l.load)
	get := func(pos uint64) {
		t.Helper()
		b, err := c.get(blockKey{pos: pos})
		if err != nil {
			t.Fatal(err)
		}
		if b.data[0] != byte(pos) {
			t.Fatalf("block %d holds %d", pos, b.data[0])
		}
		c.release(b)
	}
	for _, pos := range []uint64{1, 2, 3, 1, 4, 1, 5} { // 4 evicts 2, 5 evicts 3
		get(pos)
	}
	if len(c.m) != 3 {
		t.Errorf("cache holds %d blocks, want 3", len(c.m))
	}
	for pos, want := range map[uint64]int{1: 1, 2: 1, 3: 1, 4: 1, 5: 1} {
		if l.count[pos] != want {
			t.Errorf("block %d loaded %d times, want %d", pos, l.count[pos], want)
		}
	}
	for _, pos := range []uint64{1, 4, 5} {
		if !c.contains(blockKey{pos: pos}) {
			t.Errorf("block %d was evicted", pos)
		}
	}
	get(2) // the least recently used now is 4 (then 1, then 5)
	if l.count[2] != 2 {
		t.Errorf("evicted block 2 loaded %d times, want 2", l.count[2])
	}
	if c.contains(blockKey{pos: 4}) || !c.contains(blockKey{pos: 1}) {
		t.Error("block 4, the least recently used, should have been evicted, not 1")
	}
}

func TestCacheErrorsAreNotKept(t *testing.T) {
	l := &testLoader{count: map[uint64]int{}}
	c := newCache(3, 16, l.load)
	for i := 0; i < 2; i++ {
		if _, err := c.get(blockKey{pos: 13}); err == nil {
			t.Fatal("loading block 13 succeeded")
		}
	}
	if l.count[13] != 2 || c.contains(blockKey{pos: 13}) {
		t.Errorf("failed block loaded %d times, cached %v; want 2, false", l.count[13], c.contains(blockKey{pos: 13}))
	}
}

// TestCacheHeldBlockSurvivesEviction checks that a block evicted while a
// reader holds it keeps its data until released, then is recycled.
func TestCacheHeldBlockSurvivesEviction(t *testing.T) {
	l := &testLoader{count: map[uint64]int{}}
	c := newCache(1, 16, l.load)
	held, err := c.get(blockKey{pos: 1})
	if err != nil {
		t.Fatal(err)
	}
	for pos := uint64(2); pos < 10; pos++ {
		b, err := c.get(blockKey{pos: pos})
		if err != nil {
			t.Fatal(err)
		}
		c.release(b)
	}
	if held.data[0] != 1 || held.data[15] != 1 {
		t.Fatalf("held block overwritten: %v", held.data)
	}
	c.release(held)
	if len(c.free) == 0 {
		t.Error("released blocks were not recycled")
	}
}

func TestCachePrefetchBounded(t *testing.T) {
	l := &testLoader{count: map[uint64]int{}, pause: 50 * time.Millisecond}
	c := newCache(8, 16, l.load)
	sem := make(chan struct{}, 2)
	for pos := uint64(1); pos <= 5; pos++ {
		c.prefetch(blockKey{pos: pos}, sem)
	}
	var started atomic.Int32
	for pos := uint64(1); pos <= 5; pos++ {
		if c.contains(blockKey{pos: pos}) {
			started.Add(1)
		}
	}
	if started.Load() != 2 {
		t.Errorf("%d prefetches started with 2 slots", started.Load())
	}
	b, err := c.get(blockKey{pos: 1}) // waits for the prefetch
	if err != nil {
		t.Fatal(err)
	}
	c.release(b)
	if n := l.loads(1); n != 1 {
		t.Errorf("prefetched block loaded %d times", n)
	}
}
