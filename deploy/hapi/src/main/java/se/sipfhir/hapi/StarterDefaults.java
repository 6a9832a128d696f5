package se.sipfhir.hapi;

import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.search.DatabaseBackedPagingProvider;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.boot.web.embedded.tomcat.TomcatServletWebServerFactory;
import org.springframework.boot.web.server.WebServerFactoryCustomizer;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

import java.util.List;

/**
 * The server's mode, from {@code HAPI_PROFILE}: {@code sip-fhir} (default: the settings in README.md)
 * or {@code starter}, which puts back what the official hapi-fhir-jpaserver-starter 8.8.0 runs with
 * out of the box (its {@code application.yaml} and the defaults of its settings class), as far as a
 * client can tell the difference. The adapter is tested against both. Values only; none of the
 * starter's code.
 */
@Configuration
public class StarterDefaults {

	public static final String SIP_FHIR = "sip-fhir";
	public static final String STARTER = "starter";

	/** spring.datasource.url */
	static final String DB_URL = "jdbc:h2:mem:test_mem";
	/** hapi.fhir.reuse_cached_search_results_millis (unset, so the starter's default; also HAPI's). */
	static final long REUSE_CACHED_SEARCH_RESULTS_MILLIS = 60_000L;
	/** hapi.fhir.default_page_size / max_page_size (unset: the starter's defaults 20 and "unlimited"). */
	static final int DEFAULT_PAGE_SIZE = 20;
	static final int MAX_PAGE_SIZE = Integer.MAX_VALUE;
	/** hapi.fhir.search_prefetch_thresholds */
	static final List<Integer> SEARCH_PREFETCH_THRESHOLDS = List.of(13, 503, 2003, -1);
	/**
	 * Threads answering the GET entries of a batch in parallel: the starter sets the pool size from
	 * bundle_batch_pool_size (20) and then again from bundle_batch_pool_max_size (100), so 100 it is.
	 */
	static final int BUNDLE_BATCH_POOL_SIZE = 100;
	/** spring.datasource.hikari.maximum-pool-size unset: HikariCP's default. */
	static final int POOL_SIZE = 10;
	/** server.tomcat.relaxed-query-chars; relaxed-path-chars unset. */
	static final String RELAXED_QUERY_CHARS = "|";
	static final String RELAXED_PATH_CHARS = "";

	private static final Logger ourLog = LoggerFactory.getLogger(StarterDefaults.class);

	private final boolean myOn;

	public StarterDefaults(@Value("${sipfhir.profile}") String theProfile) {
		String profile = theProfile.isBlank() ? SIP_FHIR : theProfile.trim();
		if (!profile.equals(SIP_FHIR) && !profile.equals(STARTER)) {
			throw new IllegalArgumentException(
					"HAPI_PROFILE must be '" + SIP_FHIR + "' or '" + STARTER + "', not '" + profile + "'");
		}
		myOn = profile.equals(STARTER);
		ourLog.info(
				"Server profile: {}",
				myOn ? "starter (hapi-fhir-jpaserver-starter 8.8.0 defaults: in-memory H2, 60 s search cache, "
						+ "no rest-hook, page size 20)" : "sip-fhir");
	}

	public boolean isOn() {
		return myOn;
	}

	/** The starter's in-memory H2 when no database is configured; else {@code theDefault}. */
	public String databaseUrl(String theDefault) {
		return myOn ? DB_URL : theDefault;
	}

	/** The database pool's size: the starter's, else {@code theDefault}. */
	public int poolSize(int theDefault) {
		return myOn ? POOL_SIZE : theDefault;
	}

	/** rest-hook delivery: off in the starter (hapi.fhir.subscription.resthook_enabled unset). */
	public boolean isRestHookEnabled() {
		return !myOn;
	}

	public void applyTo(JpaStorageSettings theSettings) {
		if (!myOn) {
			return;
		}
		theSettings.setReuseCachedSearchResultsForMillis(REUSE_CACHED_SEARCH_RESULTS_MILLIS);
		theSettings.setFetchSizeDefaultMaximum(MAX_PAGE_SIZE);
		theSettings.setSearchPreFetchThresholds(SEARCH_PREFETCH_THRESHOLDS);
		theSettings.setBundleBatchPoolSize(BUNDLE_BATCH_POOL_SIZE);
	}

	public void applyTo(DatabaseBackedPagingProvider theProvider) {
		if (!myOn) {
			return;
		}
		theProvider.setDefaultPageSize(DEFAULT_PAGE_SIZE);
		theProvider.setMaximumPageSize(MAX_PAGE_SIZE);
	}

	/**
	 * Tomcat's query/path characters. Runs after Spring Boot's own customizer (which applies
	 * application.properties), so in starter mode only '|' is allowed unencoded, as in the starter.
	 */
	@Bean
	public WebServerFactoryCustomizer<TomcatServletWebServerFactory> starterQueryChars() {
		return theFactory -> {
			if (myOn) {
				theFactory.addConnectorCustomizers(theConnector -> {
					theConnector.setProperty("relaxedQueryChars", RELAXED_QUERY_CHARS);
					theConnector.setProperty("relaxedPathChars", RELAXED_PATH_CHARS);
				});
			}
		};
	}
}
