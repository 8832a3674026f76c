# Deploy artifacts (deploy/): quick checks that run in `make test`. The
# container checks (image, compose stacks) are `make test-deploy`.
set(TELEKERN_DEPLOY_TEST_DIR ${CMAKE_CURRENT_SOURCE_DIR}/deploy)

# make install (DESTDIR and a real prefix), systemd-analyze verify/security on
# the installed unit, the installed daemon starting from the installed paths.
add_test(NAME telekern_deploy_install_test
         COMMAND bash ${TELEKERN_DEPLOY_TEST_DIR}/install_test.sh ${PROJECT_BINARY_DIR})
set_tests_properties(telekern_deploy_install_test PROPERTIES LABELS deploy TIMEOUT 180
                     RESOURCE_LOCK telekern_install_manifest)

# Kubernetes manifests: kustomize render, yamllint, schema validation (npm
# kubernetes-models, installed into the build dir by npm ci from the committed
# lockfile), StatefulSet names = the proxy's resolved upstreams, probes, PDBs.
add_test(NAME telekern_deploy_kubernetes_test
         COMMAND python3 ${TELEKERN_DEPLOY_TEST_DIR}/kubernetes_test.py ${PROJECT_BINARY_DIR})
set_tests_properties(telekern_deploy_kubernetes_test PROPERTIES LABELS deploy TIMEOUT 180)

# Alert rules and dashboards: promtool check/test rules, dashboards equal
# generate.py output, every queried metric exists in a running daemon's
# /metrics (modules built in this tree; the others are listed as not checked).
add_test(NAME telekern_deploy_metrics_test
         COMMAND python3 ${TELEKERN_DEPLOY_TEST_DIR}/metrics_test.py ${PROJECT_BINARY_DIR})
set_tests_properties(telekern_deploy_metrics_test PROPERTIES LABELS deploy TIMEOUT 120)
