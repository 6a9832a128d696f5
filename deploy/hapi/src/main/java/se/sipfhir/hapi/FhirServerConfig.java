package se.sipfhir.hapi;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.jpa.api.IDaoRegistry;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.dao.IFhirSystemDao;
import ca.uhn.fhir.jpa.config.util.ResourceCountCacheUtil;
import ca.uhn.fhir.jpa.provider.DaoRegistryResourceSupportedSvc;
import ca.uhn.fhir.jpa.search.DatabaseBackedPagingProvider;
import ca.uhn.fhir.jpa.search.IStaleSearchDeletingSvc;
import ca.uhn.fhir.jpa.search.StaleSearchDeletingSvcImpl;
import ca.uhn.fhir.jpa.util.ResourceCountCache;
import ca.uhn.fhir.rest.api.IResourceSupportedSvc;
import ca.uhn.fhir.jpa.binary.api.IBinaryStorageSvc;
import ca.uhn.fhir.jpa.binstore.DatabaseBinaryContentStorageSvcImpl;
import ca.uhn.fhir.jpa.config.util.HapiEntityManagerFactoryUtil;
import ca.uhn.fhir.jpa.model.config.PartitionSettings;
import ca.uhn.fhir.jpa.model.config.SubscriptionSettings;
import ca.uhn.fhir.jpa.model.dialect.HapiFhirH2Dialect;
import ca.uhn.fhir.jpa.model.dialect.HapiFhirPostgresDialect;
import ca.uhn.fhir.jpa.subscription.match.deliver.email.IEmailSender;
import com.zaxxer.hikari.HikariDataSource;
import jakarta.persistence.EntityManagerFactory;
import org.hl7.fhir.dstu2.model.Subscription.SubscriptionChannelType;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.beans.factory.config.ConfigurableListableBeanFactory;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Primary;
import org.springframework.orm.jpa.JpaTransactionManager;
import org.springframework.orm.jpa.LocalContainerEntityManagerFactoryBean;

import java.nio.file.Path;
import java.util.Properties;
import javax.sql.DataSource;

/**
 * The beans HAPI's JPA configuration expects the application to provide.
 * Everything not set here is HAPI's default; each deviation is listed in README.md.
 */
@Configuration
public class FhirServerConfig {

	private static final Logger ourLog = LoggerFactory.getLogger(FhirServerConfig.class);

	/**
	 * Threads answering the GET entries of batch Bundles, all batches together (HAPI: 20, growing
	 * to 100). Each holds a database connection while it searches.
	 */
	static final int BATCH_THREADS = 20;

	/**
	 * Database connections (HikariCP's default: 10): the batch threads and as many again for the
	 * request threads. With 10, batches from three clients kept up to 86 threads waiting for a
	 * connection, and at 100 000 patients one waited out HikariCP's 30 s and failed
	 * (tests/benchmarks/README.md, session 6). HAPI_DB_POOL_SIZE overrides it.
	 */
	static final int POOL_SIZE = 2 * BATCH_THREADS;

	private final String myDbUrl;
	private final String myDbUser;
	private final String myDbPassword;
	private final int myPoolSize;
	private final StarterDefaults myStarterDefaults;

	public FhirServerConfig(
			@Value("${sipfhir.data-dir}") String theDataDir,
			@Value("${sipfhir.db.url:}") String theDbUrl,
			@Value("${sipfhir.db.username:}") String theDbUser,
			@Value("${sipfhir.db.password:}") String theDbPassword,
			@Value("${sipfhir.db.pool-size:0}") int thePoolSize,
			StarterDefaults theStarterDefaults) {
		myStarterDefaults = theStarterDefaults;
		myPoolSize = thePoolSize > 0 ? thePoolSize : theStarterDefaults.poolSize(POOL_SIZE);
		if (theDbUrl.isBlank()) {
			// Embedded H2 file DB under the data dir.
			// FILE_LOCK=FS: the OS lock dies with the process, so a restart after SIGKILL does not wait
			// for H2's lock-file watchdog. WRITE_DELAY=0: write each commit at once (H2 otherwise batches
			// them for up to a second, and a SIGKILLed server loses its last acknowledged writes).
			Path db = Path.of(theDataDir, "h2", "hapi").toAbsolutePath();
			myDbUrl = theStarterDefaults.databaseUrl("jdbc:h2:file:" + db + ";FILE_LOCK=FS;WRITE_DELAY=0");
			myDbUser = "sa";
			myDbPassword = "";
		} else {
			myDbUrl = theDbUrl;
			myDbUser = theDbUser;
			myDbPassword = theDbPassword;
		}
		ourLog.info("FHIR database: {}", myDbUrl.split("\\?")[0]); // no URL parameters (credentials) in the log
	}

	private boolean isPostgres() {
		return myDbUrl.startsWith("jdbc:postgresql:");
	}

	@Bean(destroyMethod = "close")
	public DataSource dataSource() {
		HikariDataSource ds = new HikariDataSource();
		ds.setJdbcUrl(myDbUrl);
		ds.setUsername(myDbUser);
		ds.setPassword(myDbPassword);
		ds.setDriverClassName(isPostgres() ? "org.postgresql.Driver" : "org.h2.Driver");
		ds.setPoolName("hapi");
		ds.setMaximumPoolSize(myPoolSize);
		ourLog.info("FHIR database pool: {} connections", myPoolSize);
		return ds;
	}

	@Primary
	@Bean
	public LocalContainerEntityManagerFactoryBean entityManagerFactory(
			ConfigurableListableBeanFactory theBeanFactory,
			FhirContext theFhirContext,
			JpaStorageSettings theStorageSettings,
			DataSource theDataSource) {
		// HAPI's helper: its entity packages, its Hibernate dialect wrapper and persistence provider.
		LocalContainerEntityManagerFactoryBean emf =
				HapiEntityManagerFactoryUtil.newEntityManagerFactory(theBeanFactory, theFhirContext, theStorageSettings);
		emf.setPersistenceUnitName("HAPI_PU");
		emf.setDataSource(theDataSource);

		Properties props = new Properties();
		props.put(
				"hibernate.dialect",
				isPostgres() ? HapiFhirPostgresDialect.class.getName() : HapiFhirH2Dialect.class.getName());
		props.put("hibernate.hbm2ddl.auto", "update");
		// No Lucene/Elasticsearch backend: _content/_text searches are unavailable (HAPI says so at request time).
		props.put("hibernate.search.enabled", "false");
		props.put("hibernate.format_sql", "false");
		props.put("hibernate.show_sql", "false");
		emf.setJpaProperties(props);
		return emf;
	}

	@Primary
	@Bean
	public JpaTransactionManager transactionManager(EntityManagerFactory theEntityManagerFactory) {
		return new JpaTransactionManager(theEntityManagerFactory);
	}

	@Bean
	public JpaStorageSettings storageSettings() {
		JpaStorageSettings settings = new JpaStorageSettings();
		// HAPI serves an identical search from its result cache for 60 s by default, so a search right
		// after a write may miss the write. The adapter writes then reads back: always search afresh.
		settings.setReuseCachedSearchResultsForMillis(null);
		if (!myStarterDefaults.isOn()) {
			settings.setBundleBatchMaxPoolSize(BATCH_THREADS); // POOL_SIZE says why
		}
		myStarterDefaults.applyTo(settings);
		return settings;
	}

	@Bean
	public SubscriptionSettings subscriptionSettings() {
		SubscriptionSettings settings = new SubscriptionSettings();
		// No subscription channel type is enabled by default; the adapter uses rest-hook.
		if (myStarterDefaults.isRestHookEnabled()) {
			settings.addSupportedSubscriptionType(SubscriptionChannelType.RESTHOOK);
		}
		return settings;
	}

	// --- The non-Hibernate-Search beans of HAPI's HapiJpaConfig (see Application for why it is not imported).

	@Bean
	public IStaleSearchDeletingSvc staleSearchDeletingSvc() {
		return new StaleSearchDeletingSvcImpl();
	}

	@Bean
	public DatabaseBackedPagingProvider databaseBackedPagingProvider() {
		// Non-default: pages of up to 1000 (HAPI: 10 per page, at most 50) so the follow-up engine's bulk
		// reads of a unit need ~8x fewer round-trips. The adapter asks with _count and follows `next`
		// links, so on a server with the default cap it still works, only with more requests.
		DatabaseBackedPagingProvider provider = new DatabaseBackedPagingProvider();
		provider.setMaximumPageSize(1000);
		myStarterDefaults.applyTo(provider);
		return provider;
	}

	@Bean
	public IResourceSupportedSvc resourceSupportedSvc(IDaoRegistry theDaoRegistry) {
		return new DaoRegistryResourceSupportedSvc(theDaoRegistry);
	}

	@Bean(name = "myResourceCountsCache")
	public ResourceCountCache resourceCountsCache(IFhirSystemDao<?, ?> theSystemDao) {
		return ResourceCountCacheUtil.newResourceCountCache(theSystemDao);
	}

	@Bean
	public IEmailSender emailSender() {
		// Required by HAPI's subscription processor even when email subscriptions are off (they are here).
		return theDetails -> {
			throw new UnsupportedOperationException("email subscriptions are not enabled on this server");
		};
	}

	@Bean
	public PartitionSettings partitionSettings() {
		return new PartitionSettings(); // partitioning off
	}

	@Bean
	public IBinaryStorageSvc binaryStorageSvc() {
		// Binary content in the same database (no external blob store locally).
		return new DatabaseBinaryContentStorageSvcImpl();
	}
}
