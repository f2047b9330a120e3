package environ

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
)

// ReadFile reads an --env-file. Its lines are NAME=VALUE, optionally
// preceded by "export "; blank lines and lines starting with # are skipped.
// VALUE is taken literally (no $ expansion): unquoted it must hold no
// whitespace; in single quotes it is verbatim; in double quotes \" \\ \$
// and \` are escapes. Anything else is an error naming file and line.
func ReadFile(path string) ([]Var, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading env file: %w", err)
	}
	return ParseFile(path, data)
}

// ParseFile parses the content of an env file named name.
func ParseFile(name string, data []byte) ([]Var, error) {
	var out []Var
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		v, ok, err := parseLine(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("env file %s line %d: %w", name, n, err)
		}
		if ok {
			out = append(out, v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("env file %s: %w", name, err)
	}
	return out, nil
}

func parseLine(line string) (Var, bool, error) {
	s := strings.TrimSpace(line)
	if s == "" || strings.HasPrefix(s, "#") {
		return Var{}, false, nil
	}
	if rest, ok := strings.CutPrefix(s, "export"); ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
		s = strings.TrimSpace(rest)
	}
	name, raw, ok := strings.Cut(s, "=")
	if !ok {
		return Var{}, false, fmt.Errorf("%q is not NAME=VALUE", clip(s))
	}
	if !ValidName(name) {
		return Var{}, false, fmt.Errorf("%q is not a valid variable name", clip(name))
	}
	val, err := parseValue(raw)
	if err != nil {
		return Var{}, false, fmt.Errorf("%s: %w", name, err)
	}
	return Var{name, val}, true, nil
}

func parseValue(raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	var val strings.Builder
	var rest string
	switch raw[0] {
	case '\'':
		end := strings.IndexByte(raw[1:], '\'')
		if end < 0 {
			return "", fmt.Errorf("unterminated single quote")
		}
		val.WriteString(raw[1 : 1+end])
		rest = raw[2+end:]
	case '"':
		i := 1
		for ; i < len(raw) && raw[i] != '"'; i++ {
			if raw[i] == '\\' && i+1 < len(raw) && strings.IndexByte("\"\\$`", raw[i+1]) >= 0 {
				i++
			}
			val.WriteByte(raw[i])
		}
		if i >= len(raw) {
			return "", fmt.Errorf("unterminated double quote")
		}
		rest = raw[i+1:]
	default:
		// A # after a space or a tab starts a comment, as in a shell.
		v := raw
		for i := 1; i < len(raw); i++ {
			if raw[i] == '#' && (raw[i-1] == ' ' || raw[i-1] == '\t') {
				v = raw[:i]
				break
			}
		}
		v = strings.TrimSpace(v)
		if strings.ContainsAny(v, " \t") {
			return "", fmt.Errorf("value %q holds whitespace: quote it", clip(v))
		}
		if strings.ContainsAny(v, `"'`) {
			return "", fmt.Errorf("value %q has a quote inside: quote the whole value", clip(v))
		}
		return v, nil
	}
	if r := strings.TrimSpace(rest); r != "" && !strings.HasPrefix(r, "#") {
		return "", fmt.Errorf("unexpected %q after the closing quote", clip(r))
	}
	return val.String(), nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
