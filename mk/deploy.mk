# Containers, Kubernetes and fresh-machine checks (deploy/, tools/debian-image.sh). None
# of these targets is part of `make test`: they need root and podman (their scripts
# install it, debootstrap, runc and catatonit with apt) and take minutes. The operator's
# guide is deploy/README.md.
#
#   make fresh-check    clone HEAD into a clean Debian 12 image (debootstrap, podman
#                       import) and run `make demo` and `make test` there; run it before
#                       releasing any change to the Makefile or mk/
#   make image          localhost/nexus:latest (deploy/Containerfile) and
#                       localhost/nexus-prometheus:latest; USE_CUDA=1: localhost/nexus:cuda
#   make deploy-check   render deploy/k8s (Debian's kubectl), then run the emulated overlay
#                       with podman kube play: probes, a KServe query through the Service,
#                       a backend pod deleted with nothing lost, Prometheus scraping;
#                       then the TLS overlay (deploy/k8s/tls): clients without TLS, a
#                       client certificate or the token refused, with them served
.PHONY: fresh-check image deploy-check
fresh-check:
	$(Q)tools/fresh-check.sh
image:
	$(Q)USE_CUDA=$(USE_CUDA) CUDA_HOME=$(CUDA_HOME) deploy/image.sh
deploy-check:
	$(Q)deploy/check.sh
