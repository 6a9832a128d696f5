package se.sipfhir.hapi;

import ca.uhn.fhir.jpa.batch2.JpaBatch2Config;
import ca.uhn.fhir.batch2.jobs.config.Batch2JobsConfig;
import ca.uhn.fhir.jpa.api.config.ThreadPoolFactoryConfig;
import ca.uhn.fhir.jpa.config.r4.JpaR4Config;
import ca.uhn.fhir.jpa.subscription.channel.config.SubscriptionChannelConfig;
import ca.uhn.fhir.jpa.subscription.match.config.SubscriptionProcessorConfig;
import ca.uhn.fhir.jpa.subscription.submit.config.SubscriptionSubmitterConfig;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.boot.autoconfigure.data.jpa.JpaRepositoriesAutoConfiguration;
import org.springframework.boot.autoconfigure.elasticsearch.ElasticsearchRestClientAutoConfiguration;
import org.springframework.boot.autoconfigure.flyway.FlywayAutoConfiguration;
import org.springframework.boot.autoconfigure.jdbc.DataSourceAutoConfiguration;
import org.springframework.boot.autoconfigure.orm.jpa.HibernateJpaAutoConfiguration;
import org.springframework.boot.autoconfigure.quartz.QuartzAutoConfiguration;
import org.springframework.boot.autoconfigure.thymeleaf.ThymeleafAutoConfiguration;
import org.springframework.boot.web.servlet.ServletRegistrationBean;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Import;

/**
 * Entry point: a HAPI FHIR JPA (R4) server with rest-hook subscriptions, mounted at /fhir/*.
 * Spring Boot only supplies the embedded Tomcat and the context; all FHIR/JPA wiring is HAPI's
 * own configuration classes plus {@link FhirServerConfig}.
 * <p>
 * HAPI's {@code HapiJpaConfig} is deliberately not imported: it is JpaConfig plus the Hibernate Search
 * services, and HAPI takes the mere presence of its {@code IFulltextSearchSvc} bean to mean "Hibernate Search
 * is on", so ValueSet {@code $expand} of a stored CodeSystem fails with HSEARCH800001 when it is off.
 * {@link FhirServerConfig} declares the rest of HapiJpaConfig's beans.
 */
@SpringBootApplication(
		exclude = {
			// We build the DataSource / EntityManagerFactory ourselves (HAPI needs its own EMF helper).
			DataSourceAutoConfiguration.class,
			HibernateJpaAutoConfiguration.class,
			JpaRepositoriesAutoConfiguration.class,
			// On the classpath through HAPI, but not used: keep Boot from wiring them.
			ElasticsearchRestClientAutoConfiguration.class,
			ThymeleafAutoConfiguration.class,
			QuartzAutoConfiguration.class,
			FlywayAutoConfiguration.class // HAPI migrates with its own tool; Hibernate 'update' here
		})
@Import({
	JpaR4Config.class,
	JpaBatch2Config.class,
	Batch2JobsConfig.class,
	ThreadPoolFactoryConfig.class,
	SubscriptionSubmitterConfig.class,
	SubscriptionProcessorConfig.class,
	SubscriptionChannelConfig.class
})
public class Application {

	public static void main(String[] args) {
		SpringApplication.run(Application.class, args);
	}

	@Bean
	public ServletRegistrationBean<SipFhirRestfulServer> fhirServlet(SipFhirRestfulServer theServer) {
		ServletRegistrationBean<SipFhirRestfulServer> reg = new ServletRegistrationBean<>(theServer, "/fhir/*");
		// Initialise at start-up, so the first client request does not pay for it and
		// "metadata answers 200" really means "ready".
		reg.setLoadOnStartup(1);
		return reg;
	}
}
