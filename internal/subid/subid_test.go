package subid

import (
	"reflect"
	"testing"
)

func TestFind(t *testing.T) {
	const file = "# comment\nalice:100000:65536\nbob:165536:1000\n1002:300000:70000\nbad:line\ncarol:x:5\ndave:400000:0\n"
	for _, c := range []struct {
		name  string
		id    int
		want  Range
		found bool
	}{
		{"alice", 1000, Range{100000, 65536}, true},
		{"bob", 1001, Range{165536, 1000}, true},
		{"", 1002, Range{300000, 70000}, true},     // by uid
		{"erin", 1002, Range{300000, 70000}, true}, // name absent, uid line
		{"carol", 1003, Range{}, false},            // malformed start
		{"dave", 1004, Range{}, false},             // empty range
		{"nobody", 65534, Range{}, false},          // no line
		{"bad", 1005, Range{}, false},              // two fields
		{"", 100000, Range{}, false},               // an id is not a start
	} {
		got, ok := Find([]byte(file), c.name, c.id)
		if got != c.want || ok != c.found {
			t.Errorf("Find(%q, %d) = %v, %v; want %v, %v", c.name, c.id, got, ok, c.want, c.found)
		}
	}
}

func TestMapAndHelperArgs(t *testing.T) {
	for _, c := range []struct {
		name string
		own  int
		r    Range
		ok   bool
		want []string
	}{
		{"range", 1000, Range{100000, 65536}, true, []string{"42", "0", "1000", "1", "1", "100000", "65536"}},
		{"large range capped", 1000, Range{200000, 1 << 20}, true, []string{"42", "0", "1000", "1", "1", "200000", "65536"}},
		{"small range", 1000, Range{300000, 10}, true, []string{"42", "0", "1000", "1", "1", "300000", "10"}},
		{"no range", 1000, Range{}, false, []string{"42", "0", "1000", "1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := HelperArgs(42, Map(c.own, c.r, c.ok)); !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}
