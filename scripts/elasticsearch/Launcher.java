// Launcher starts a real single-node Elasticsearch 8 from the jars that
// scripts/opensearch.sh fetches from Maven Central with
// SEARCH_ENGINE=elasticsearch (scripts/elasticsearch-pom.xml): Elastic's
// distribution archives are not on Maven Central. Only the HTTP transport
// is loaded as a plugin (ClasspathNode): no security (plain HTTP, no
// password), no x-pack, no other module; what the transfer and the search
// page use is in the server jar.
//
//   java -cp 'LIB/*:CLASSES' Launcher HOME HTTP_PORT TRANSPORT_PORT
//
// Data and logs live under HOME. It listens on 127.0.0.1 only, and runs
// until SIGTERM, which closes the node.
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.elasticsearch.common.logging.LogConfigurator;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.node.ClasspathNode;
import org.elasticsearch.node.Node;
import org.elasticsearch.transport.netty4.Netty4Plugin;

public class Launcher {
    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: Launcher HOME HTTP_PORT TRANSPORT_PORT");
            System.exit(2);
        }
        Path home = Path.of(args[0]).toAbsolutePath();
        Files.createDirectories(home.resolve("data"));
        Files.createDirectories(home.resolve("logs"));
        Settings settings = Settings.builder()
                .put("path.home", home.toString())
                .put("path.data", home.resolve("data").toString())
                .put("path.logs", home.resolve("logs").toString())
                .put("cluster.name", "logagent-test")
                .put("node.name", "node-1")
                .put("network.host", "127.0.0.1")
                .put("http.port", args[1])
                .put("transport.port", args[2])
                .put("discovery.type", "single-node")
                // A test machine's disk may be fuller than the default
                // watermarks allow; a full disk is not what tests test.
                .put("cluster.routing.allocation.disk.threshold_enabled", false)
                .build();
        // Elasticsearch's own logging must be set up before any of its
        // classes asks for a logger: its main does this, we replace main.
        LogConfigurator.configureESLogging();
        LogConfigurator.configureWithoutConfig(settings);
        Node node = new ClasspathNode(new Environment(settings, home.resolve("config")), List.of(Netty4Plugin.class));
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
                node.awaitClose(10, TimeUnit.SECONDS);
            } catch (Exception e) {
                e.printStackTrace();
            }
            stopped.countDown();
        }));
        node.start();
        System.out.println("elasticsearch started on 127.0.0.1:" + args[1]);
        stopped.await();
    }
}
