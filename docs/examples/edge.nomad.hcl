job "edge" {
  group "edge" {
    network {
      port "http" { static = 8080 }
    }
    task "nginx" {
      driver = "docker"
      config {
        image   = "nginx:1.27"
        ports   = ["http"]
        volumes = ["local/default.conf:/etc/nginx/conf.d/default.conf"]
      }
      template {
        destination   = "local/default.conf"
        change_mode   = "signal"
        change_signal = "SIGHUP"
        splay         = "5s"
        data          = <<EOF
upstream web {
{{- range service "web" }}
  server {{ .Address }}:{{ .Port }};
{{- else }}
  server 127.0.0.1:65535 down;
{{- end }}
}
server {
  listen {{ env "NOMAD_PORT_http" }};
  location / { proxy_pass http://web; }
}
EOF
      }
      template {
        destination = "secrets/env"
        env         = true
        data        = <<EOF
STATUS_USER={{ keyOrDefault "edge/status_user" "admin" }}
{{ with nomadVar "nomad/jobs/edge" }}STATUS_PASSWORD={{ .status_password }}{{ end }}
EOF
      }
    }
  }
}
