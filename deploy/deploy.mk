# Deploy targets, included by the top-level Makefile (`include deploy/deploy.mk`).
# Tools go to .tools/bin (gitignored); built binaries are cached in ~/.cache/keyward.

DEPLOY_SCRIPTS := deploy/scripts

.PHONY: test-deploy test-live k8s-manifests helm-lint deploy-tools

test-deploy: ## Validate images, compose, chart and manifests (helm lint/unittest, compose-go, promtool, real kube-apiserver dry-run)
	$(DEPLOY_SCRIPTS)/test-deploy.sh

test-live: build ## Run the deployment for real: live alert rules on Prometheus 3.2.1, promtool 3.2.1, dashboard lint, compose up (dockerd + Compose v2), helm install on a single-node Kubernetes v1.34
	$(DEPLOY_SCRIPTS)/test-live.sh all

k8s-manifests: deploy-tools-helm ## Regenerate deploy/k8s/manifests from the chart and deploy/k8s/values.yaml
	$(DEPLOY_SCRIPTS)/k8s-manifests.sh

helm-lint: deploy-tools-helm ## helm lint --strict the chart with its defaults and every ci/*-values.yaml
	.tools/bin/helm lint --strict deploy/helm/keyward --quiet
	@for f in deploy/helm/keyward/ci/*-values.yaml; do \
		echo "helm lint --strict -f $$f"; \
		.tools/bin/helm lint --strict deploy/helm/keyward --quiet -f $$f || exit 1; \
	done

deploy-tools: ## Install the deploy validation tools into .tools/bin (first run builds them: ~10 min)
	$(DEPLOY_SCRIPTS)/tools.sh all

.PHONY: deploy-tools-helm
deploy-tools-helm:
	@$(DEPLOY_SCRIPTS)/tools.sh helm
