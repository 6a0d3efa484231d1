# Containers and fresh-machine checks (deploy/, tools/debian-image.sh). None of these
# targets is part of `make test`: they need root and podman (their scripts install it,
# debootstrap, runc and catatonit with apt) and take minutes.
#
#   make fresh-check    clone HEAD into a clean Debian 12 image (debootstrap, podman
#                       import) and run `make demo` and `make test` there; run it before
#                       releasing any change to the Makefile or mk/
.PHONY: fresh-check
fresh-check:
	$(Q)tools/fresh-check.sh
