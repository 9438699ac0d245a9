job "whoami" {
  constraint {
    attribute = "${attr.cpu.arch}"
    value     = "arm64"
  }

  group "web" {
    count = 2

    constraint {
      operator = "distinct_hosts"
      value    = "true"
    }

    network {
      port "http" {}                 # a dynamic port; NOMAD_PORT_http tells the task
    }

    service {
      name = "whoami"
      port = "http"
      tags = ["routing.enable=true", "routing.http.routers.whoami.rule=Host(`whoami.service.rabble`)"]
      check {
        type     = "http"
        path     = "/health"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "server" {
      driver = "raw_exec"
      config {
        command = "/usr/local/bin/whoami"
        args    = ["--port", "${NOMAD_PORT_http}"]
      }
      resources {
        cpu    = 100
        memory = 64
      }
    }
  }
}
