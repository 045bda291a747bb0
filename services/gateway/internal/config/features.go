package config

import (
	"sort"

	"github.com/keyward/keyward/pkg/anthropic"
)

// featuresYAML is the "features" section: the feature policy for every
// caller (default) and per tier. A tier inherits every key it leaves unset
// from default, and default from the built-in policy
// (anthropic.DefaultFeaturePolicy).
type featuresYAML struct {
	Default featurePolicyYAML            `yaml:"default"`
	Tiers   map[string]featurePolicyYAML `yaml:"tiers"`
}

type featurePolicyYAML struct {
	ServerTools      *[]string   `yaml:"server_tools"`
	URLSources       *bool       `yaml:"url_sources"`
	FileSources      *bool       `yaml:"file_sources"`
	MCPServers       *bool       `yaml:"mcp_servers"`
	Skills           *bool       `yaml:"skills"`
	FastMode         *bool       `yaml:"fast_mode"`
	InferenceGeo     *[]string   `yaml:"inference_geo"`
	Betas            *[]string   `yaml:"betas"`
	RequireMaxUses   *bool       `yaml:"require_max_uses"`
	DefaultMaxUses   *int64      `yaml:"default_max_uses"`
	MaxUses          *int64      `yaml:"max_uses"`
	RereadPerToolUse *bool       `yaml:"reread_per_tool_use"`
	Bounds           *boundsYAML `yaml:"bounds"`
}

type boundsYAML struct {
	DocumentTokens   *int64 `yaml:"document_tokens"`
	ImageTokens      *int64 `yaml:"image_tokens"`
	WebSearchTokens  *int64 `yaml:"web_search_tokens"`
	WebFetchTokens   *int64 `yaml:"web_fetch_tokens"`
	ToolSearchTokens *int64 `yaml:"tool_search_tokens"`
	CodeExecTokens   *int64 `yaml:"code_execution_tokens"`
	MCPServerTokens  *int64 `yaml:"mcp_tokens"`
	ContainerTokens  *int64 `yaml:"container_tokens"`
	OtherToolTokens  *int64 `yaml:"other_tool_tokens"`
}

// FeaturePolicy returns the feature policy for a tier ("" or a tier
// without its own = default).
func (c *Config) FeaturePolicy(tier string) anthropic.FeaturePolicy {
	if p, ok := c.FeaturePolicies[tier]; ok {
		return p
	}
	if p, ok := c.FeaturePolicies[""]; ok {
		return p
	}
	return anthropic.DefaultFeaturePolicy()
}

func applyFeatures(c *Config, f featuresYAML, p *problems) {
	def := f.Default.apply(anthropic.DefaultFeaturePolicy(), "features.default", p)
	c.FeaturePolicies = map[string]anthropic.FeaturePolicy{"": def}
	names := make([]string, 0, len(f.Tiers))
	for n := range f.Tiers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		if _, ok := c.Tiers[name]; !ok {
			p.addf("features.tiers.%s: no such tier (declare it under tiers)", name)
			continue
		}
		c.FeaturePolicies[name] = f.Tiers[name].apply(def, "features.tiers."+name, p)
	}
}

// apply overlays the keys y sets on base, reporting every bad value.
func (y featurePolicyYAML) apply(base anthropic.FeaturePolicy, where string, p *problems) anthropic.FeaturePolicy {
	pol := base
	setList := func(dst *[]string, src *[]string, key string) {
		if src == nil {
			return
		}
		for _, v := range *src {
			if v == "" {
				p.addf("%s.%s: empty entry", where, key)
			}
		}
		*dst = append([]string(nil), (*src)...)
	}
	setBool := func(dst *bool, src *bool) {
		if src != nil {
			*dst = *src
		}
	}
	setCount := func(dst *int64, src *int64, key string, min int64) {
		if src == nil {
			return
		}
		if *src < min {
			p.addf("%s.%s must be ≥ %d", where, key, min)
			return
		}
		*dst = *src
	}
	setList(&pol.ServerTools, y.ServerTools, "server_tools")
	setBool(&pol.URLSources, y.URLSources)
	setBool(&pol.FileSources, y.FileSources)
	setBool(&pol.MCPServers, y.MCPServers)
	setBool(&pol.Skills, y.Skills)
	setBool(&pol.FastMode, y.FastMode)
	setList(&pol.InferenceGeos, y.InferenceGeo, "inference_geo")
	setList(&pol.Betas, y.Betas, "betas")
	setBool(&pol.RequireMaxUses, y.RequireMaxUses)
	setCount(&pol.DefaultMaxUses, y.DefaultMaxUses, "default_max_uses", 1)
	setCount(&pol.MaxUses, y.MaxUses, "max_uses", 0)
	setBool(&pol.RereadPerToolUse, y.RereadPerToolUse)
	if pol.MaxUses > 0 && pol.DefaultMaxUses > pol.MaxUses {
		p.addf("%s: default_max_uses %d is above max_uses %d", where, pol.DefaultMaxUses, pol.MaxUses)
	}
	if b := y.Bounds; b != nil {
		w := where + ".bounds"
		for _, f := range []struct {
			dst *int64
			src *int64
			key string
		}{
			{&pol.Bounds.DocumentTokens, b.DocumentTokens, "document_tokens"},
			{&pol.Bounds.ImageTokens, b.ImageTokens, "image_tokens"},
			{&pol.Bounds.WebSearchTokens, b.WebSearchTokens, "web_search_tokens"},
			{&pol.Bounds.WebFetchTokens, b.WebFetchTokens, "web_fetch_tokens"},
			{&pol.Bounds.ToolSearchTokens, b.ToolSearchTokens, "tool_search_tokens"},
			{&pol.Bounds.CodeExecTokens, b.CodeExecTokens, "code_execution_tokens"},
			{&pol.Bounds.MCPServerTokens, b.MCPServerTokens, "mcp_tokens"},
			{&pol.Bounds.ContainerTokens, b.ContainerTokens, "container_tokens"},
			{&pol.Bounds.OtherToolTokens, b.OtherToolTokens, "other_tool_tokens"},
		} {
			if f.src == nil {
				continue
			}
			if *f.src < 0 {
				p.addf("%s.%s must be ≥ 0", w, f.key)
				continue
			}
			*f.dst = *f.src
		}
	}
	return pol
}
