package se.sipfhir.hapi;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.dao.IFhirSystemDao;
import ca.uhn.fhir.jpa.provider.JpaCapabilityStatementProvider;
import ca.uhn.fhir.jpa.provider.JpaSystemProvider;
import ca.uhn.fhir.jpa.provider.ValueSetOperationProvider;
import ca.uhn.fhir.jpa.search.DatabaseBackedPagingProvider;
import ca.uhn.fhir.rest.api.EncodingEnum;
import ca.uhn.fhir.rest.server.RestfulServer;
import ca.uhn.fhir.rest.server.provider.ResourceProviderFactory;
import ca.uhn.fhir.rest.server.util.ISearchParamRegistry;
import org.hl7.fhir.r4.model.Bundle;
import org.hl7.fhir.r4.model.Meta;
import org.springframework.beans.factory.annotation.Qualifier;
import org.springframework.stereotype.Component;

/** The FHIR REST endpoint: HAPI's JPA resource providers + system provider, nothing custom. */
@Component
public class SipFhirRestfulServer extends RestfulServer {

	private final transient ResourceProviderFactory myResourceProviders;
	private final transient JpaSystemProvider<Bundle, Meta> mySystemProvider;
	private final transient ValueSetOperationProvider myValueSetOperationProvider;
	private final transient IFhirSystemDao<Bundle, Meta> mySystemDao;
	private final transient JpaStorageSettings myStorageSettings;
	private final transient ISearchParamRegistry mySearchParamRegistry;
	private final transient IValidationSupport myValidationSupport;
	private final transient DatabaseBackedPagingProvider myPagingProvider;

	public SipFhirRestfulServer(
			FhirContext theFhirContext,
			@Qualifier("myResourceProvidersR4") ResourceProviderFactory theResourceProviders,
			@Qualifier("mySystemProviderR4") JpaSystemProvider<Bundle, Meta> theSystemProvider,
			ValueSetOperationProvider theValueSetOperationProvider,
			@Qualifier("mySystemDaoR4") IFhirSystemDao<Bundle, Meta> theSystemDao,
			JpaStorageSettings theStorageSettings,
			ISearchParamRegistry theSearchParamRegistry,
			IValidationSupport theValidationSupport,
			DatabaseBackedPagingProvider thePagingProvider) {
		super(theFhirContext);
		myResourceProviders = theResourceProviders;
		mySystemProvider = theSystemProvider;
		myValueSetOperationProvider = theValueSetOperationProvider;
		mySystemDao = theSystemDao;
		myStorageSettings = theStorageSettings;
		mySearchParamRegistry = theSearchParamRegistry;
		myValidationSupport = theValidationSupport;
		myPagingProvider = thePagingProvider;
	}

	@Override
	protected void initialize() {
		registerProviders(myResourceProviders.createProviders());
		registerProvider(mySystemProvider); // transaction/batch, $meta, _history
		registerProvider(myValueSetOperationProvider); // $expand, $validate-code (not in the resource providers since 7.x)
		// Search result pages live in the database, so `next` links survive across requests.
		setPagingProvider(myPagingProvider);
		setDefaultResponseEncoding(EncodingEnum.JSON);

		JpaCapabilityStatementProvider capabilities = new JpaCapabilityStatementProvider(
				this, mySystemDao, myStorageSettings, mySearchParamRegistry, myValidationSupport);
		capabilities.setImplementationDescription("sip-fhir local HAPI FHIR JPA server (R4)");
		setServerConformanceProvider(capabilities);
	}
}
