package main

import (
	"strings"
	"testing"
)

func TestParseArgs(t *testing.T) {
	for _, tc := range []struct {
		argv []string
		want args
		err  string
	}{
		{[]string{"-f", "-o", "offset=4096", "/dev/fd/3", "/dev/fd/4"}, args{image: "/dev/fd/3", mountpoint: "/dev/fd/4", offset: 4096}, ""},
		{[]string{"-o", "ro,offset=7,allow_other", "img", "mnt"}, args{image: "img", mountpoint: "mnt", offset: 7}, ""},
		{[]string{"-d", "--fallback", "/usr/bin/squashfuse_ll", "img", "mnt"}, args{image: "img", mountpoint: "mnt", debug: true, fallback: "/usr/bin/squashfuse_ll"}, ""},
		{[]string{"img"}, args{}, "usage:"},
		{[]string{"-o"}, args{}, "-o needs a value"},
		{[]string{"-o", "offset=-1", "img", "mnt"}, args{}, `bad offset "-1"`},
		{[]string{"-x", "img", "mnt"}, args{}, "unknown option -x"},
		{[]string{"--fallback"}, args{}, "--fallback needs a program"},
	} {
		got, err := parseArgs(tc.argv)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want one with %q", tc.argv, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: %+v, %v; want %+v", tc.argv, got, err, tc.want)
		}
	}
}

func TestRunErrors(t *testing.T) {
	for _, tc := range []struct {
		argv []string
		want string
	}{
		{[]string{"/no/such/image", "/dev/fd/4"}, "launch-squashfs: opening /no/such/image: no such file or directory"},
		{[]string{"/", "/dev/fd/4"}, "launch-squashfs: / is not a regular file"},
		{[]string{"/proc/self/exe", "/dev/fd/4"}, "launch-squashfs: opening /proc/self/exe: too many levels of symbolic links"}, // a link is not followed
		{[]string{"/etc/passwd", "/dev/fd/4"}, "launch-squashfs: /etc/passwd: the image is damaged: "},
		{[]string{"-o", "offset=99999999", "/etc/hostname", "/dev/fd/4"}, "is past its end"},
	} {
		var out strings.Builder
		if code := run(tc.argv, &out); code != exitFailure {
			t.Errorf("%q: exit %d, want %d", tc.argv, code, exitFailure)
		}
		if !strings.Contains(out.String(), tc.want) || strings.Count(out.String(), "\n") != 1 {
			t.Errorf("%q printed %q, want one line with %q", tc.argv, out.String(), tc.want)
		}
	}
}
