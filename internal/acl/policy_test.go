package acl

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// problems splits a joined error into its messages.
func problems(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

func TestPolicyValidate(t *testing.T) {
	rules := []Rule{{Resource: ResourceKV, Access: Read}}
	tests := []struct {
		name string
		p    Policy
		want []string
	}{
		{name: "valid", p: Policy{Name: "ops-team_1", Rules: []Rule{
			{Resource: ResourceKV, Access: Read},
			{Resource: ResourceKV, Prefix: "app/", Access: Write},
			{Resource: ResourceService, Prefix: "app/", Access: Deny},
			{Resource: ResourceNode, Access: Read},
			{Resource: ResourceJob, Prefix: "web", Access: Write},
			{Resource: ResourceACL, Access: Read},
			{Resource: ResourceOperator, Access: Write},
			{Resource: ResourceKV, Prefix: "ключ/", Access: Read},
		}}},
		{name: "name of one digit", p: Policy{Name: "0", Rules: rules}},
		{name: "name of 64", p: Policy{Name: strings.Repeat("a", 64), Rules: rules}},
		{name: "name missing", p: Policy{Rules: rules}, want: []string{`name: required`}},
		{name: "name reserved", p: Policy{Name: "management", Rules: rules}, want: []string{`name: "management" is reserved`}},
		{name: "name upper case", p: Policy{Name: "Ops", Rules: rules},
			want: []string{`name: "Ops" is not a valid policy name: 1 to 64 of a-z, 0-9, '_' and '-', starting with a letter or digit`}},
		{name: "name starts with dash", p: Policy{Name: "-ops", Rules: rules},
			want: []string{`name: "-ops" is not a valid policy name: 1 to 64 of a-z, 0-9, '_' and '-', starting with a letter or digit`}},
		{name: "name with dot", p: Policy{Name: "a.b", Rules: rules},
			want: []string{`name: "a.b" is not a valid policy name: 1 to 64 of a-z, 0-9, '_' and '-', starting with a letter or digit`}},
		{name: "name too long", p: Policy{Name: strings.Repeat("a", 65), Rules: rules},
			want: []string{`name: "` + strings.Repeat("a", 65) + `" is 65 characters long, more than 64`}},
		{name: "no rules", p: Policy{Name: "ops"}, want: []string{`rules: at least one rule is required`}},
		{name: "unknown resource", p: Policy{Name: "ops", Rules: []Rule{rules[0], {Resource: "kvv", Access: Read}}},
			want: []string{`rules[1].resource: "kvv" is not one of kv, service, node, job, acl, operator`}},
		{name: "empty resource", p: Policy{Name: "ops", Rules: []Rule{{Access: Read}}},
			want: []string{`rules[0].resource: "" is not one of kv, service, node, job, acl, operator`}},
		{name: "bad access", p: Policy{Name: "ops", Rules: []Rule{rules[0], {Resource: ResourceKV, Prefix: "a", Access: "rw"}}},
			want: []string{`rules[1].access: "rw" is not one of read, write, deny`}},
		{name: "empty access", p: Policy{Name: "ops", Rules: []Rule{{Resource: ResourceNode}}},
			want: []string{`rules[0].access: "" is not one of read, write, deny`}},
		{name: "access in upper case", p: Policy{Name: "ops", Rules: []Rule{{Resource: ResourceNode, Access: "READ"}}},
			want: []string{`rules[0].access: "READ" is not one of read, write, deny`}},
		{name: "prefix of 1024", p: Policy{Name: "ops", Rules: []Rule{{Resource: ResourceKV, Prefix: strings.Repeat("k", 1024), Access: Read}}}},
		{name: "prefix too long", p: Policy{Name: "ops", Rules: []Rule{{Resource: ResourceKV, Prefix: strings.Repeat("k", 1025), Access: Read}}},
			want: []string{`rules[0].prefix: is 1025 bytes long, more than 1024`}},
		{name: "prefix not utf-8", p: Policy{Name: "ops", Rules: []Rule{{Resource: ResourceKV, Prefix: "a\xff", Access: Read}}},
			want: []string{`rules[0].prefix: "a\xff" is not valid UTF-8`}},
		{name: "prefix on acl", p: Policy{Name: "ops", Rules: []Rule{{Resource: ResourceACL, Prefix: "x", Access: Write}}},
			want: []string{`rules[0].prefix: must be empty for resource acl, whose only name is ""`}},
		{name: "prefix on operator", p: Policy{Name: "ops", Rules: []Rule{{Resource: ResourceOperator, Prefix: "raft", Access: Read}}},
			want: []string{`rules[0].prefix: must be empty for resource operator, whose only name is ""`}},
		{name: "duplicate rule", p: Policy{Name: "ops", Rules: []Rule{
			{Resource: ResourceKV, Prefix: "app/", Access: Read},
			{Resource: ResourceService, Prefix: "app/", Access: Read},
			{Resource: ResourceKV, Prefix: "app", Access: Read},
			{Resource: ResourceKV, Prefix: "app/", Access: Deny},
		}}, want: []string{`rules[3]: resource kv prefix "app/" is already given by rules[0]`}},
		{name: "duplicate empty prefix", p: Policy{Name: "ops", Rules: []Rule{
			{Resource: ResourceACL, Access: Read},
			{Resource: ResourceACL, Access: Write},
			{Resource: ResourceACL, Access: Deny},
		}}, want: []string{
			`rules[1]: resource acl prefix "" is already given by rules[0]`,
			`rules[2]: resource acl prefix "" is already given by rules[0]`,
		}},
		{name: "every problem", p: Policy{Name: "Bad", Rules: []Rule{
			{Resource: "kvv", Prefix: "\xfe", Access: "rw"},
		}}, want: []string{
			`name: "Bad" is not a valid policy name: 1 to 64 of a-z, 0-9, '_' and '-', starting with a letter or digit`,
			`rules[0].resource: "kvv" is not one of kv, service, node, job, acl, operator`,
			`rules[0].prefix: "\xfe" is not valid UTF-8`,
			`rules[0].access: "rw" is not one of read, write, deny`,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := problems(tc.p.Validate())
			if !slices.Equal(got, tc.want) {
				t.Errorf("Validate() =\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

func TestResources(t *testing.T) {
	want := []string{"kv", "service", "node", "job", "acl", "operator"}
	if !slices.Equal(Resources, want) {
		t.Errorf("Resources = %q, want %q", Resources, want)
	}
	for _, r := range want {
		if !knownResource(r) {
			t.Errorf("knownResource(%q) = false", r)
		}
	}
	for _, r := range []string{"", "KV", "kvv", "keyring"} {
		if knownResource(r) {
			t.Errorf("knownResource(%q) = true", r)
		}
	}
}

func TestPolicyJSON(t *testing.T) {
	p := Policy{Name: "ops", Rules: []Rule{{Resource: ResourceKV, Access: Read}, {Resource: ResourceNode, Prefix: "web", Access: Write}}}
	data, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"name":"ops","rules":[{"resource":"kv","access":"read"},{"resource":"node","prefix":"web","access":"write"}]}`
	if string(data) != want {
		t.Errorf("json = %s, want %s", data, want)
	}
	var back Policy
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if back.Name != p.Name || !slices.Equal(back.Rules, p.Rules) {
		t.Errorf("round trip = %+v, want %+v", back, p)
	}
}
