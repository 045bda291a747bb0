// Package validate holds the deploy checks that run as Go tests: the docker-compose file
// loaded by compose-go with its consistency checks, the Dockerfiles and .dockerignore
// linted for the image rules, and the plain Kubernetes manifests strict-decoded.
//
// It is its own module, outside go.work, so its heavy dependencies (compose-go,
// client-go) never reach the services' builds: run it with
//
//	cd deploy/validate && GOWORK=off go test ./...
package validate
