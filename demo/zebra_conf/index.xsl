<?xml version="1.0" encoding="UTF-8"?>
<!--
  unioncat's own extract stylesheet (no imports, works offline): indexes a MARC 21 or UNIMARC
  record under Bib-1 names.
    Local-number (12)            001                      also the record id for update/delete
    Title (4)                    245$a (MARC 21), 200$a (UNIMARC)
    Author (1003)                100$a 700$a (MARC 21), 700$a 701$a (UNIMARC)
    ISBN (7)                     020$a, 010$a
    Subject-heading (21)         650$a, 606$a
    Date-of-publication (31)     008/07-10 (MARC 21), 100$a/09-12 (UNIMARC); numeric, so
                                 ranges work with @attr 4=109 @attr 2=4
    Date/time-last-modified (1012)  005/00-07, numeric (yyyymmdd: Zebra's numeric index is 32-bit,
                                 so the full yyyymmddhhmmss would overflow)
-->
<xsl:stylesheet xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
                xmlns:z="http://indexdata.com/zebra-2.0"
                xmlns:marc="http://www.loc.gov/MARC21/slim"
                version="1.0">
  <xsl:output method="xml" version="1.0" encoding="UTF-8" indent="yes"/>
  <xsl:template match="text()"/>

  <xsl:template match="/">
    <xsl:apply-templates select="marc:collection/marc:record|marc:record"/>
  </xsl:template>

  <xsl:template match="marc:record">
    <xsl:variable name="id" select="normalize-space(marc:controlfield[@tag='001'])"/>
    <z:record z:id="{$id}" type="update">
      <z:index name="Local-number:w Local-number:0"><xsl:value-of select="$id"/></z:index>
      <xsl:for-each select="marc:datafield[@tag='245' or @tag='200']/marc:subfield[@code='a']">
        <z:index name="Title:w Title:p"><xsl:value-of select="."/></z:index>
      </xsl:for-each>
      <xsl:for-each select="marc:datafield[@tag='100' or @tag='700' or @tag='701']/marc:subfield[@code='a']">
        <z:index name="Author:w Author:p"><xsl:value-of select="."/></z:index>
      </xsl:for-each>
      <xsl:for-each select="marc:datafield[@tag='020' or @tag='010']/marc:subfield[@code='a']">
        <z:index name="ISBN:w"><xsl:value-of select="translate(normalize-space(.), '-', '')"/></z:index>
      </xsl:for-each>
      <xsl:for-each select="marc:datafield[@tag='650' or @tag='606']/marc:subfield[@code='a']">
        <z:index name="Subject-heading:w Subject-heading:p"><xsl:value-of select="."/></z:index>
      </xsl:for-each>
      <xsl:for-each select="marc:controlfield[@tag='008']">
        <xsl:variable name="year" select="substring(., 8, 4)"/>
        <xsl:if test="string(number($year)) != 'NaN'">
          <z:index name="Date-of-publication:n"><xsl:value-of select="$year"/></z:index>
        </xsl:if>
      </xsl:for-each>
      <xsl:for-each select="marc:datafield[@tag='100']/marc:subfield[@code='a']">
        <xsl:variable name="year" select="substring(., 10, 4)"/>
        <xsl:if test="string-length(.) &gt;= 13 and string(number($year)) != 'NaN'">
          <z:index name="Date-of-publication:n"><xsl:value-of select="$year"/></z:index>
        </xsl:if>
      </xsl:for-each>
      <xsl:for-each select="marc:controlfield[@tag='005']">
        <z:index name="Date/time-last-modified:n"><xsl:value-of select="substring(., 1, 8)"/></z:index>
      </xsl:for-each>
    </z:record>
  </xsl:template>
</xsl:stylesheet>
