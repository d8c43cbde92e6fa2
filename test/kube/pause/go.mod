module clusterhub.local/test/kube/pause

go 1.26.0
