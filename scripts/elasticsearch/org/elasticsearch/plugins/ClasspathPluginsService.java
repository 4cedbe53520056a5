// ClasspathPluginsService loads plugins from classes already on the class
// path, instead of from plugin bundles in a modules/ directory: the jars
// come from Maven Central, not from a distribution's layout. It lives in
// Elasticsearch's package because LoadedPlugin and loadPlugin are
// package-private.
package org.elasticsearch.plugins;

import java.util.ArrayList;
import java.util.List;

import org.elasticsearch.Version;
import org.elasticsearch.common.settings.Settings;

public class ClasspathPluginsService extends PluginsService {
    private final List<LoadedPlugin> loaded = new ArrayList<>();

    public ClasspathPluginsService(Settings settings, PluginsLoader loader, List<Class<? extends Plugin>> classes) {
        super(settings, null, loader);
        for (Class<? extends Plugin> c : classes) {
            PluginDescriptor d = new PluginDescriptor(c.getName(), "on the class path", "NA", Version.CURRENT.toString(),
                    "17", c.getName(), null, List.of(), false, false, false, false);
            loaded.add(new LoadedPlugin(d, loadPlugin(c, settings, null), Thread.currentThread().getContextClassLoader()));
        }
    }

    @Override
    protected List<LoadedPlugin> plugins() {
        return loaded;
    }
}
