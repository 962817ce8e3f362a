/* nginx for the update tests: no daemon, no master, every path inside the work directory. */
#include "nginx_site.h"

#include <stdio.h>

int nginx_site_start(kf_proc *p, const char *work, const char *root, uint16_t *port)
{
    return nginx_site_start_tls(p, work, root, NULL, NULL, port);
}

int nginx_site_start_tls(kf_proc *p, const char *work, const char *root, const char *cert,
                         const char *key, uint16_t *port)
{
    *port = kf_free_port();
    char conf[700];
    snprintf(conf, sizeof conf, "%s/nginx.conf", work);
    FILE *f = fopen(conf, "w");
    if (!f) {
        return -1;
    }
    fprintf(f,
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid %s/nginx.pid;\n"
            "error_log %s/error.log;\nevents { worker_connections 64; }\n"
            "http {\n  access_log %s/access.log;\n  sendfile on;\n  client_body_temp_path %s;\n"
            "  proxy_temp_path %s;\n  fastcgi_temp_path %s;\n  uwsgi_temp_path %s;\n"
            "  scgi_temp_path %s;\n  server {\n    listen 127.0.0.1:%u%s;\n    root %s;\n",
            work, work, work, work, work, work, work, work, *port, cert ? " ssl" : "", root);
    if (cert) {
        fprintf(f, "    ssl_certificate %s;\n    ssl_certificate_key %s;\n", cert, key);
    }
    fprintf(f, "  }\n}\n");
    if (fclose(f) != 0) {
        return -1;
    }
    char *argv[] = {"nginx", "-c", conf, "-p", (char *)work, "-e", "stderr", NULL};
    if (kf_spawn(p, "nginx", argv, NULL) != 0) {
        return -1;
    }
    if (kf_wait_tcp(p, *port, 10000) != 0) {
        kf_dump_log(p, 20);
        return -1;
    }
    return 0;
}
