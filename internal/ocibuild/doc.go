// Package ocibuild converts an OCI or Docker image into a SIF (FromOCI): it
// takes the verified configuration and layers from internal/oci, applies the
// layers to a temporary root tree with internal/layer, writes the files an
// Apptainer image has (environment scripts, runscript, labels: meta.go) from
// the image configuration, and packs the tree with internal/build; with a
// cache (internal/cache), an image from a registry is converted once per
// manifest digest.
//
// It must not fetch or verify blobs itself (internal/oci does), write outside
// its temporary tree and the output, run anything from the image, or mount.
package ocibuild
