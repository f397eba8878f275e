# Docker executor and images.
.PHONY: docker test-docker
docker:
	@echo "(docker images not defined yet)"

test-docker:
	@echo "(no docker tests yet)"
