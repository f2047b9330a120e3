package squashfs

import (
	"sync"
	"sync/atomic"
)

// blockKey names a stored block by where it starts in the image and its
// stored size word (0 for metadata blocks, whose size is in their header).
type blockKey struct {
	pos  uint64
	word uint32
}

// block is one decompressed block, shared by the cache and its readers.
// Its data and next are written once by the goroutine that loads it, before
// done is closed, and only read after.
type block struct {
	key  blockKey
	data []byte
	next uint64 // metadata blocks: where the following block starts
	err  error
	done chan struct{}

	// refs counts the holders: the cache while the block is in it, each
	// reader between get and release, the loader. The last one out
	// recycles data.
	refs atomic.Int32

	// prev and nxt link the cache's LRU ring; cached says the block is in
	// the map. Both are guarded by cache.mu.
	prev, nxt *block
	cached    bool
}

// cache is a bounded, concurrent LRU cache of decompressed blocks. A block
// asked for while it is being loaded is waited for, not loaded twice.
type cache struct {
	load    func(b *block) error // fills b.data (bufSize long) and b.next from b.key
	bufSize int
	max     int
	free    chan []byte // recycled buffers

	mu   sync.Mutex
	m    map[blockKey]*block
	ring block // ring.nxt is the most recently used block

	loads atomic.Int64 // how many blocks were loaded, for tests
}

// maxFree bounds how many recycled buffers a cache keeps.
const maxFree = 64

// newCache returns a cache of at most max blocks of bufSize bytes that
// loads missing blocks with load.
func newCache(max, bufSize int, load func(b *block) error) *cache {
	c := &cache{
		load:    load,
		bufSize: bufSize,
		max:     max,
		free:    make(chan []byte, min(max, maxFree)),
		m:       make(map[blockKey]*block, min(max, 1024)),
	}
	c.ring.prev, c.ring.nxt = &c.ring, &c.ring
	return c
}

// get returns the block for k, loading it if it is neither cached nor
// being loaded. The caller must release it.
func (c *cache) get(k blockKey) (*block, error) {
	b, fresh := c.acquire(k)
	if fresh {
		c.fill(b)
	} else {
		<-b.done
	}
	if b.err != nil {
		err := b.err
		c.release(b)
		return nil, err
	}
	return b, nil
}

// prefetch starts loading k in the background unless it is cached or being
// loaded, or all the slots of sem are taken.
func (c *cache) prefetch(k blockKey, sem chan struct{}) {
	c.mu.Lock()
	if c.m[k] != nil {
		c.mu.Unlock()
		return
	}
	select {
	case sem <- struct{}{}:
	default:
		c.mu.Unlock()
		return
	}
	b := c.insertLocked(k)
	c.mu.Unlock()
	go func() {
		c.fill(b)
		c.release(b)
		<-sem
	}()
}

// contains reports whether k is cached or being loaded.
func (c *cache) contains(k blockKey) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k] != nil
}

// acquire returns the block for k with a reference taken, and whether it
// is new, so that the caller must fill it.
func (c *cache) acquire(k blockKey) (*block, bool) {
	c.mu.Lock()
	if b := c.m[k]; b != nil {
		b.refs.Add(1)
		c.unlinkLocked(b)
		c.pushFrontLocked(b)
		c.mu.Unlock()
		return b, false
	}
	b := c.insertLocked(k)
	c.mu.Unlock()
	return b, true
}

// insertLocked adds a new, unfilled block for k, held by the cache and by
// the caller, evicting the least recently used blocks past the bound.
func (c *cache) insertLocked(k blockKey) *block {
	b := &block{key: k, done: make(chan struct{})}
	b.refs.Store(2)
	b.cached = true
	c.m[k] = b
	c.pushFrontLocked(b)
	for len(c.m) > c.max {
		c.removeLocked(c.ring.prev)
	}
	return b
}

// fill loads b and wakes its waiters; a block that failed to load leaves
// the cache so that a later reader tries again.
func (c *cache) fill(b *block) {
	c.loads.Add(1)
	b.data = c.buffer()
	b.err = c.load(b)
	if b.err != nil {
		c.mu.Lock()
		if b.cached {
			c.removeLocked(b)
		}
		c.mu.Unlock()
	}
	close(b.done)
}

// release drops one reference to b.
func (c *cache) release(b *block) {
	if b.refs.Add(-1) == 0 && cap(b.data) == c.bufSize {
		select {
		case c.free <- b.data[:c.bufSize]:
		default:
		}
	}
}

// buffer returns a recycled or new buffer of bufSize bytes.
func (c *cache) buffer() []byte {
	select {
	case buf := <-c.free:
		return buf
	default:
		return make([]byte, c.bufSize)
	}
}

// removeLocked takes b out of the cache and drops the cache's reference.
func (c *cache) removeLocked(b *block) {
	c.unlinkLocked(b)
	delete(c.m, b.key)
	b.cached = false
	c.release(b)
}

func (c *cache) unlinkLocked(b *block) {
	b.prev.nxt = b.nxt
	b.nxt.prev = b.prev
	b.prev, b.nxt = nil, nil
}

func (c *cache) pushFrontLocked(b *block) {
	b.prev = &c.ring
	b.nxt = c.ring.nxt
	c.ring.nxt.prev = b
	c.ring.nxt = b
}
