package capwriter

import "testing"

func TestBuffer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fail   bool
		writes []string
		want   string
		over   bool
		errs   int
	}{
		{"fits", false, []string{"ab", "cd"}, "abcd", false, 0},
		{"exactly max", false, []string{"abcde"}, "abcde", false, 0},
		{"clipped", false, []string{"abc", "defg", "h"}, "abcde", true, 0},
		{"fail keeps nothing of the write", true, []string{"abc", "defg"}, "abc", true, 1},
		{"fail then small fits", true, []string{"abcdef", "ab"}, "ab", true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &Buffer{Max: 5, Fail: tc.fail}
			errs := 0
			for _, w := range tc.writes {
				n, err := b.Write([]byte(w))
				if err != nil {
					errs++
					if n != 0 {
						t.Errorf("failed write reported %d bytes", n)
					}
				} else if n != len(w) {
					t.Errorf("write of %d bytes reported %d", len(w), n)
				}
			}
			if b.String() != tc.want || b.Over != tc.over || errs != tc.errs {
				t.Errorf("kept %q over %v errors %d, want %q %v %d", b.String(), b.Over, errs, tc.want, tc.over, tc.errs)
			}
		})
	}
}
