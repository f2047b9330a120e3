module github.com/launch-hpc/launch

go 1.26.8

require (
	github.com/cyphar/filepath-securejoin v0.4.1
	github.com/spf13/cobra v1.10.2
	github.com/sylabs/sif/v2 v2.24.2
	golang.org/x/sys v0.47.0
)

require (
	github.com/google/go-containerregistry v0.22.1 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/opencontainers/image-spec v1.1.1 // indirect
	github.com/spf13/pflag v1.0.10 // indirect
)
