package config

import "github.com/keyward/keyward/services/gateway/internal/catalog"

// The analytics catalog is its own package; these names are the
// configuration's view of it (Config.Catalog, the YAML's analytics entries).
type (
	Catalog       = catalog.Catalog
	QueryType     = catalog.QueryType
	Param         = catalog.Param
	QueryTypeYAML = catalog.Entry
	ParamError    = catalog.ParamError
)

// DefaultCatalog is the seed's four query types.
func DefaultCatalog() Catalog { return catalog.Default() }

func buildCatalog(entries map[string]QueryTypeYAML) (Catalog, []string) {
	return catalog.Build(entries)
}
